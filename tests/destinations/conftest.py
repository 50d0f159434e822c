"""Shared fixtures: a canonical event factory, a running FakeVendors, and a tiny deliver loop."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import pytest

from tagpipe.destinations.base import Destination, Result, VendorRequest
from tagpipe.models import (
    Address,
    ClickIds,
    ClientContext,
    Consent,
    DeliveryTask,
    Ecommerce,
    Event,
    Item,
    PageContext,
    UserData,
)
from tests.fakes import FakeVendors

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the fixed clock of the golden tests


def sha(text: str) -> str:
    """Independent SHA-256 of an already-normalised string (goldens do not call tagpipe.hashing)."""
    return hashlib.sha256(text.encode()).hexdigest()


def make_event(n: int = 0, *, timestamp: float | None = None, **overrides: Any) -> Event:
    """A complete website purchase, the way transform builds it from a gtag hit."""
    fields: dict[str, Any] = dict(
        event_uid=f"hit{n}:0",
        hit_id=f"hit{n}",
        event_id=f"evt-{n}",
        name="purchase",
        timestamp=NOW - 60 if timestamp is None else timestamp,
        source="gtag",
        measurement_id="G-TEST123",
        page=PageContext(url="https://shop.example.com/checkout?step=3", referrer="https://shop.example.com/cart",
                         title="Checkout"),
        client=ClientContext(client_id="1234567.7654321", user_id="user-42", session_id="1767225000",
                             engagement_time_msec=1200, ip="203.0.113.7", user_agent="Mozilla/5.0 (X11; Linux)"),
        user_data=UserData(email=" Jane.Doe@Example.com ", phone="+1 (650) 555-1234", external_id="cust-42",
                           address=Address(first_name="Jane", last_name="Doe", street="1 Main St.",
                                           city="San Francisco", region="CA", postal_code="94107", country="US")),
        click_ids=ClickIds(fbp="fb.1.1767225000000.1098115397", fbc="fb.1.1767225000000.AbCdEfGh",
                           gclid="Cj0KCQ-test-gclid", ttclid="E.C.P.test-ttclid", ttp="ttp-cookie-1"),
        consent=Consent(ad_storage=True, analytics_storage=True, ad_user_data=True, ad_personalization=True),
        ecommerce=Ecommerce(value=72.05, currency="USD", transaction_id=f"T-{n}", items=[
            Item(item_id="SKU-1", item_name="Shirt", price=30.0, quantity=2, item_category="Apparel", item_brand="Acme"),
            Item(item_id="SKU-2", item_name="Socks", price=12.05, quantity=1),
        ]),
        params={"coupon_code": "SUMMER"},
    )
    fields.update(overrides)
    return Event(**fields)


def task_for(destination: Destination, event: Event) -> DeliveryTask:
    prepared = destination.prepare(event)
    assert prepared is not None, f"{destination.type} did not take {event.name}"
    return DeliveryTask(
        event_uid=event.event_uid, hit_id=event.hit_id, event_id=event.event_id, event_name=prepared.event_name,
        event_time=event.timestamp, destination=destination.id, payload=prepared.payload,
        identifiers=prepared.identifiers,
    )


def deliver(destination: Destination, tasks: list[DeliveryTask], client: httpx.Client):
    """What tagpipe.pipeline.deliver does for one destination: credentials, batch, send, classify."""
    destination.before_send(client)
    batch = destination.build_requests(tasks)
    results: list[tuple[VendorRequest, Result]] = []
    for request in batch.requests:
        response = error = None
        try:
            response = client.request(request.method, request.url, headers=request.headers, json=request.json,
                                      content=request.content, timeout=destination.settings.timeout)
        except httpx.HTTPError as exc:
            error = exc
        results.append((request, destination.classify(request, response, error)))
    return batch, results


def response(status: int = 200, json: Any = None, headers: dict[str, str] | None = None,
             url: str = "https://vendor.test/") -> httpx.Response:
    """A vendor answer for the classification tables (no network)."""
    return httpx.Response(status, json=json, headers=headers, request=httpx.Request("POST", url))


@pytest.fixture(scope="session")
def fakes_server():
    with FakeVendors() as fakes:
        yield fakes


@pytest.fixture
def fakes(fakes_server: FakeVendors):
    fakes_server.reset()
    yield fakes_server
    fakes_server.check_refusals()


@pytest.fixture(scope="session")
def client():
    with httpx.Client(timeout=5.0) as c:
        yield c


@pytest.fixture
def real_now() -> float:
    return time.time()
