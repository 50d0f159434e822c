"""Shopify order webhooks: golden fixtures (tests/fixtures/shopify, from Shopify's published examples), the
signature made exactly as Shopify documents it, and collect's answers and records for good and bad hits.

A fixture is a RawHit as JSON whose body is `_payload` (a file beside it, byte for byte) with `_patch`
merged over its top-level keys, or an inline `body`; `UPDATE_GOLDEN=1` rewrites the outputs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import warnings
from pathlib import Path

import pytest

from tagpipe.config import Config, StorageConfig
from tagpipe.errors import InvalidInput
from tagpipe.models import RawHit
from tagpipe.parsing import parse_hit, shopify
from tagpipe.pipeline.collect import Collector
from tagpipe.runtime import Runtime
from tagpipe.storage.sqlite import SqliteStore
from tagpipe.transport.local import LocalBus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SECRET = "shpss_0123456789abcdef0123456789abcdef"  # a test value, never a real app's
SHOPIFY_HEADERS = {"content-type": "application/json", "x-shopify-shop-domain": "jsmith.myshopify.com",
                   "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
                   "user-agent": "Shopify-Captain-Hook"}  # fmt: skip


def fixture_body(case: dict, folder: Path) -> str:
    if "_payload" not in case:
        return case.get("body", "")
    text = (folder / case["_payload"]).read_text()
    if "_patch" not in case:
        return text
    order = json.loads(text)
    order.update(case["_patch"])
    return json.dumps(order)


def load_case(path: Path) -> RawHit:
    case = json.loads(path.read_text())
    data = {k: v for k, v in case.items() if not k.startswith("_")}
    data["body"] = fixture_body(case, path.parent)
    return RawHit.model_validate(data)


def run(raw: RawHit) -> object:
    try:
        # as queued and stored (compact_json): fields left None are left out, so a field added to the models
        # for another source does not rewrite these outputs
        return [e.model_dump(mode="json", exclude_none=True) for e in parse_hit(raw)]
    except InvalidInput as e:
        return {"error": {"code": e.code, "status": e.status, "message": e.message}}


def check_golden(case: Path) -> None:
    got = run(load_case(case))
    out = case.with_name(case.name.replace(".input.json", ".output.json"))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        out.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert out.exists(), f"{out.name} is missing: run UPDATE_GOLDEN=1 pytest {__file__} and review it"
    assert got == json.loads(out.read_text())
    assert run(load_case(case)) == got  # deterministic: collect validates, transform rebuilds


def payload(name: str = "orders_create.json") -> bytes:
    return (FIXTURES / "shopify" / "payloads" / name).read_bytes()


def shopify_signature(secret: str, body: bytes) -> str:
    """As Shopify's "Verify webhooks" shows it: base64 of the HMAC-SHA256 digest of the raw body, keyed
    with the app's client secret."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def hit(body: bytes, topic: str = "orders/create", **kw) -> RawHit:
    headers = {**SHOPIFY_HEADERS, "x-shopify-topic": topic, **kw.pop("headers", {})}
    return RawHit(source="shopify", path="/webhooks/shopify", body=body.decode(), headers=headers,
                  received_at=1_640_995_205.0, **kw)


# --------------------------------------------------------------------------- golden

CASES = sorted((FIXTURES / "shopify").glob("*.input.json"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name.removesuffix(".input.json"))
def test_golden(case: Path) -> None:
    check_golden(case)


def test_no_orphan_outputs() -> None:
    assert CASES
    for out in (FIXTURES / "shopify").glob("*.output.json"):
        assert out.with_name(out.name.replace(".output.json", ".input.json")).exists(), out


# --------------------------------------------------------------------------- the signature


def test_a_signature_made_as_shopify_documents_is_accepted() -> None:
    body = payload()
    shopify.verify({"x-shopify-hmac-sha256": shopify_signature(SECRET, body)}, body, SECRET, "SHOPIFY_WEBHOOK_SECRET")


@pytest.mark.parametrize("headers, body, why", [
    ({}, payload(), "no X-Shopify-Hmac-Sha256"),
    ({"x-shopify-hmac-sha256": shopify_signature("another-secret", payload())}, payload(), "another secret"),
    ({"x-shopify-hmac-sha256": shopify_signature(SECRET, payload())}, payload().replace(b"359.97", b"359.98"),
     "a body changed after signing"),
    ({"x-shopify-hmac-sha256": hmac.new(SECRET.encode(), payload(), hashlib.sha256).hexdigest()}, payload(),
     "hex instead of base64"),
])  # fmt: skip
def test_a_wrong_or_missing_signature_is_refused_401(headers, body, why) -> None:
    with pytest.raises(InvalidInput) as info:
        shopify.verify(headers, body, SECRET, "SHOPIFY_WEBHOOK_SECRET")
    assert (info.value.code, info.value.status) == ("unauthorized", 401), why
    assert "jon@example.com" not in info.value.message and SECRET not in info.value.message


def test_without_a_configured_secret_every_webhook_is_refused_naming_the_variable() -> None:
    body = payload()
    with pytest.raises(InvalidInput) as info:
        shopify.verify({"x-shopify-hmac-sha256": shopify_signature("", body)}, body, "", "SHOPIFY_WEBHOOK_SECRET")
    assert info.value.status == 401 and "SHOPIFY_WEBHOOK_SECRET" in info.value.message


# --------------------------------------------------------------------------- the dedup rule


def test_create_paid_and_every_retry_of_one_order_are_one_purchase_event_id() -> None:
    body = payload()
    ids = {
        (e.name, e.event_id, e.ecommerce.transaction_id)
        for topic, webhook_id in (("orders/create", "w-1"), ("orders/paid", "w-2"), ("orders/paid", "w-2"))
        for e in parse_hit(hit(body, topic, headers={"x-shopify-webhook-id": webhook_id}))
    }
    assert ids == {("purchase", "820982911946154508", "820982911946154508")}


def test_refunds_have_their_own_event_id_and_the_order_as_transaction() -> None:
    (refund,) = parse_hit(hit(payload("refunds_create.json"), "refunds/create"))
    assert (refund.name, refund.event_id, refund.ecommerce.transaction_id) == (
        "refund", "refund-890088186047892319", "820982911946154508")
    assert refund.ecommerce.value == pytest.approx(89.99) and refund.ecommerce.currency == "USD"


# --------------------------------------------------------------------------- mapping


def test_the_buyer_is_read_from_the_order_never_from_shopifys_request() -> None:
    order = json.loads(payload())
    order["client_details"] = {"browser_ip": "192.168.1.20", "user_agent": "Mozilla/5.0 (buyer)"}
    order["browser_ip"] = "203.0.113.9"
    (event,) = parse_hit(hit(json.dumps(order).encode(), client_ip="35.190.0.1",
                             headers={"x-client-geo-country": "US"}))
    assert event.client.ip == "203.0.113.9"  # the private client_details address is nobody's; not Shopify's IP
    assert event.client.user_agent == "Mozilla/5.0 (buyer)"  # not Shopify-Captain-Hook
    assert event.client.geo == {}  # the request's geo headers are Shopify's data centre
    assert event.action_source == "website" and event.page.url == "https://jsmith.myshopify.com/"


def test_saved_cookies_and_landing_click_ids_reach_the_event() -> None:
    (event,) = parse_hit(load_case(FIXTURES / "shopify" / "orders_paid_storefront.input.json"))
    assert event.client.client_id == "1234567890.1640990000"  # from the _ga cart attribute
    assert event.click_ids.fbp == "fb.1.1640990000000.1098115397"
    assert (event.click_ids.fbclid, event.click_ids.gclid) == ("IwAR0abcDEF_ghi", "Cj0KCQiA-test")
    # no _fbc was saved: one is made from the landing fbclid, created when the order was (first seen)
    assert event.click_ids.fbc == "fb.1.1640995200000.IwAR0abcDEF_ghi"
    assert event.client.ip == "2001:db8::7"  # IPv6 over IPv4, as Meta's parameter builder picks
    assert set(event.cookies) == {"_fbp", "_ga"}  # a cart attribute that is no cookie stays out
    assert event.user_data.email == "jon@example.com" and event.user_data.other_emails == ["john@example.com"]


def test_a_pos_order_is_a_physical_store_event() -> None:
    order = json.loads(payload())
    order["source_name"] = "pos"
    (event,) = parse_hit(hit(json.dumps(order).encode()))
    assert event.action_source == "physical_store"


@pytest.mark.parametrize("patch, code", [
    ({"line_items": {"id": 1}}, "invalid_field"),
    ({"total_price": "three"}, "invalid_field"),
    ({"created_at": "yesterday", "processed_at": None}, "invalid_timestamp"),
    ({"line_items": [{"title": "x", "price": "1.00", "quantity": 1}] * 201}, "too_many_items"),
])  # fmt: skip
def test_bad_order_fields_are_refused_by_name(patch, code) -> None:
    order = json.loads(payload())
    order.update(patch)
    with pytest.raises(InvalidInput) as info:
        parse_hit(hit(json.dumps(order).encode()))
    assert info.value.code == code
    assert "jon@example.com" not in info.value.message


# --------------------------------------------------------------------------- collect


class WebhookCollect:
    """A Collector on a real local queue and store behind Starlette's test client (no sockets)."""

    def __init__(self, tmp_path: Path) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Route

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient

        config = Config(storage=StorageConfig(dir=str(tmp_path)), destinations={"dry_run": {"type": "log"}})
        self.runtime = Runtime(config, LocalBus(tmp_path), SqliteStore(tmp_path))
        self.collector = Collector(self.runtime)
        app = Starlette(routes=[Route("/{path:path}", self.collector.__call__, methods=["GET", "POST"])])
        self.http = TestClient(app, base_url="https://collect.shop.example")

    def post(self, path: str, body: bytes, headers: dict[str, str]):
        return self.http.post(path, content=body, headers=headers)

    def published(self) -> list[RawHit]:
        msgs = self.runtime.bus.pull("transform", 100)
        self.runtime.bus.ack("transform", [m.ack_id for m in msgs])
        return [RawHit.model_validate_json(m.data) for m in msgs]

    def rows(self, sql: str) -> list[tuple]:
        return self.runtime.store.query(sql)

    def close(self) -> None:
        self.http.close()
        self.runtime.close()


@pytest.fixture
def collect(tmp_path, monkeypatch):
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", SECRET)
    c = WebhookCollect(tmp_path)
    yield c
    c.close()


def signed(body: bytes, topic: str = "orders/create", secret: str = SECRET) -> dict[str, str]:
    return {**SHOPIFY_HEADERS, "x-shopify-topic": topic, "x-shopify-hmac-sha256": shopify_signature(secret, body)}


def test_a_signed_order_is_queued_and_answered_with_its_event_id(collect) -> None:
    body = payload()
    r = collect.post("/webhooks/shopify", body, signed(body))
    assert r.status_code == 200, r.text
    assert r.json()["event_ids"] == ["820982911946154508"]
    (raw,) = collect.published()
    assert raw.source == "shopify" and raw.body.encode() == body  # the bytes Shopify signed
    assert raw.headers["x-shopify-topic"] == "orders/create"
    assert "x-shopify-hmac-sha256" not in raw.headers
    assert [e.event_id for e in parse_hit(raw)] == ["820982911946154508"]  # transform builds the same


def test_a_bad_signature_is_a_401_with_a_reason_and_a_failed_event_without_the_body(collect) -> None:
    body = payload()
    r = collect.post("/webhooks/shopify", body, signed(body, secret="not-the-secret"))
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized" and "X-Shopify-Hmac-Sha256" in r.json()["reason"]
    assert collect.published() == []
    (failure,) = collect.rows("SELECT stage, error_code, payload FROM failed_events")
    assert failure[:2] == ("collect", "unauthorized")
    assert "jon@example.com" not in failure[2] and "Aviator" not in failure[2]
    assert collect.rows("SELECT outcome, reason FROM outcomes") == [("rejected", "unauthorized")]


def test_a_signed_bad_body_is_a_400_and_a_failed_event(collect) -> None:
    body = b'{"id": 820982911946154508, "email": '
    r = collect.post("/webhooks/shopify", body, signed(body))
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    assert collect.published() == []
    assert collect.rows("SELECT error_code FROM failed_events") == [("invalid_json",)]
    assert collect.rows("SELECT outcome, reason FROM outcomes") == [("rejected", "invalid_json")]


def test_another_topic_is_answered_200_and_recorded_once_as_ignored(collect) -> None:
    body = payload()
    r = collect.post("/webhooks/shopify", body, signed(body, "orders/updated"))
    assert r.status_code == 200 and r.json()["events"] == 0
    assert collect.published() == []
    assert collect.rows("SELECT event_uid, destination, outcome, reason FROM outcomes") == [
        ("*", "*", "filtered", "webhook_ignored")]


def test_the_webhook_path_takes_no_api_key_or_browser_cookies(collect) -> None:
    body = payload()
    r = collect.post("/webhooks/shopify", body, {**signed(body), "origin": "https://jsmith.myshopify.com"})
    assert r.status_code == 200 and "set-cookie" not in r.headers
