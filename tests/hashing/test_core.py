"""Primitives, the public API surface, the country tables and the phone-hash cache."""

from __future__ import annotations

import hashlib
import inspect

import pytest

import tagpipe.hashing as H
from tagpipe.hashing import _core
from tagpipe.hashing._iso3166 import ALPHA2, ALPHA3_TO_ALPHA2


def test_api_surface_others_code_against():
    sig = {name: str(inspect.signature(getattr(H, name))) for name in H.__all__ if callable(getattr(H, name))}
    assert sig["sha256_hex"] == "(value: 'str') -> 'str'"
    assert sig["meta_normalize"] == (
        "(field: 'str', value: 'str | None', *, default_country: 'str | None' = None) -> 'str | None'"
    )
    assert sig["meta_hash"] == sig["meta_normalize"]
    assert sig["google_normalize_email"] == "(value: 'str | None') -> 'str | None'"
    assert (
        sig["google_normalize_phone"]
        == "(value: 'str | None', default_country: 'str | None' = None) -> 'str | None'"
    )
    assert sig["google_normalize_name"] == sig["google_normalize_street"] == sig["google_normalize_email"]
    assert sig["google_hash"] == (
        "(kind: 'str', value: 'str | None', *, default_country: 'str | None' = None) -> 'str | None'"
    )
    assert sig["google_plain"].startswith("(kind: 'str', value: 'str | None'")
    assert sig["tiktok_hash"] == sig["google_hash"]
    assert H.META_FIELDS == {
        "em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id",
        "f5first", "f5last", "fi", "dobd", "dobm", "doby",
    }  # fmt: skip


def test_sha256_hex():
    assert H.sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert H.sha256_hex("zoë") == hashlib.sha256("zoë".encode()).hexdigest()


def test_lone_surrogates_are_dropped_not_raised():
    bad = "a\ud800@example.com"
    assert H.meta_hash("em", bad) is None
    assert H.google_hash("email", bad) is None
    assert H.tiktok_hash("email", bad) is None


def test_looks_hashed():
    h = H.sha256_hex("x")
    assert H.looks_hashed(h) and H.looks_hashed(h.upper()) and H.looks_hashed(f" {h} ")
    assert not H.looks_hashed(h[:32])
    assert H.looks_hashed(h[:32], lengths=(32, 64))
    assert not H.looks_hashed("g" * 64)
    assert not H.looks_hashed(None)


def test_dedup_keeps_order():
    assert H.dedup(["b", None, "a", "b", "", "a"]) == ["b", "a"]


@pytest.mark.parametrize(
    "value,code",
    [("us", "US"), ("USA", "US"), ("United States", "US"), ("U.S.A.", "US"), ("UK", "GB"), ("gb", "GB"),
     ("United Kingdom", "GB"), ("Deutschland", "DE"), ("Côte d'Ivoire", "CI"), ("Türkiye", "TR"),
     ("Turkey", "TR"), ("xx", None), ("", None), (None, None), ("Narnia", None)],
)  # fmt: skip
def test_country_alpha2(value, code):
    assert H.country_alpha2(value) == code


def test_iso_tables_match_installed_pycountry():
    """Meta's SDK validates `country` with pycountry; if this fails, run tests/hashing/gen_iso3166.py."""
    pycountry = pytest.importorskip("pycountry")
    assert {c.alpha_2 for c in pycountry.countries} == ALPHA2
    assert {c.alpha_3: c.alpha_2 for c in pycountry.countries} == ALPHA3_TO_ALPHA2
    for c in pycountry.countries:
        assert H.country_alpha2(c.name) == c.alpha_2, c.name


def test_phone_cache_holds_no_raw_pii():
    H.clear_phone_cache()
    raw = "+44 7911 123456"
    out = H.google_hash("phone", raw)
    assert out == H.sha256_hex("+447911123456")
    assert H.google_hash("phone", raw) == out  # served from the cache
    blob = repr(_core._cache)
    for needle in (raw, "447911123456", "7911123456", "7911"):
        assert needle not in blob
    assert all(len(k) == 16 for k in _core._cache)  # keyed BLAKE2b-128 digests
    assert set(_core._cache.values()) <= {out, H.meta_hash("ph", raw, default_country="GB"), ""}


def test_phone_cache_is_bounded_and_can_be_disabled():
    try:
        H.set_phone_cache_size(3)
        for i in range(10):
            H.google_hash("phone", f"+1 650 555 12{i:02d}")
        assert len(_core._cache) <= 3
        H.set_phone_cache_size(0)
        H.google_hash("phone", "+1 650 555 1299")
        assert len(_core._cache) == 0
    finally:
        H.set_phone_cache_size(4096)


def test_cache_does_not_change_results():
    cases = [
        ("07911 123456", "GB"),
        ("07911 123456", None),
        ("07911 123456", "US"),
        ("+1 650 555 1234", None),
    ]
    first = [(H.google_hash("phone", v, default_country=dc), H.tiktok_hash("phone", v, default_country=dc),
              H.meta_hash("ph", v, default_country=dc)) for v, dc in cases]  # fmt: skip
    again = [(H.google_hash("phone", v, default_country=dc), H.tiktok_hash("phone", v, default_country=dc),
              H.meta_hash("ph", v, default_country=dc)) for v, dc in cases]  # fmt: skip
    assert first == again
    assert first[0][0] == H.sha256_hex("+447911123456") and first[1][0] is None
    assert first[0][2] == H.sha256_hex("447911123456")


def test_overlong_input_is_dropped():
    long_email = "a" * 600 + "@example.com"
    assert H.meta_hash("em", long_email) is None
    assert H.meta_hash("em", "@" * 100_000) is None  # and fast: the SDK's regex would take seconds
    assert H.google_hash("email", long_email) is None
    assert H.tiktok_hash("email", long_email) is None
    assert H.google_hash("phone", "1" * 600) is None
    assert H.meta_hash_doc("fn", "x" * 600) is None
    assert H.meta_hash("fn", "x" * 512) == H.sha256_hex("x" * 512)
