"""Test doubles that are real servers: FakeVendors speaks the five vendor protocols over HTTP."""

from tests.fakes.vendors import FakeVendors, Fault, GoogleAdsState, VendorState

__all__ = ["FakeVendors", "Fault", "GoogleAdsState", "VendorState"]
