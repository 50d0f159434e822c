"""WooCommerce order webhooks: golden fixtures (tests/fixtures/woocommerce, from the REST API docs' order
examples), X-WC-Webhook-Signature made as WC_Webhook::generate_signature makes it, and collect's answers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from tagpipe.errors import InvalidInput
from tagpipe.models import RawHit
from tagpipe.parsing import parse_hit, woocommerce
from tests.parsing.test_shopify import FIXTURES, WebhookCollect, check_golden, load_case

SECRET = "m]x;W#sQ,8v@tR2&kL9!pZ_c4Yf(Jd"  # WooCommerce's generated secrets carry punctuation, commas too
WOO_HEADERS = {"content-type": "application/json", "x-wc-webhook-source": "https://example.com/",
               "x-wc-webhook-resource": "order", "x-wc-webhook-id": "12",
               "user-agent": "WooCommerce/9.9.5 Hookshot (WordPress/6.8.1)"}  # fmt: skip


def payload(name: str = "order_727_processing.json") -> bytes:
    return (FIXTURES / "woocommerce" / "payloads" / name).read_bytes()


def woo_signature(secret: str, body: bytes) -> str:
    """base64_encode(hash_hmac('sha256', $payload, $secret, true)): WC_Webhook::generate_signature."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def hit(body: bytes, topic: str = "order.updated", **headers: str) -> RawHit:
    return RawHit(source="woocommerce", path="/webhooks/woocommerce", body=body.decode(), received_at=1_490_210_890.0,
                  headers={**WOO_HEADERS, "x-wc-webhook-topic": topic, **headers})


CASES = sorted((FIXTURES / "woocommerce").glob("*.input.json"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name.removesuffix(".input.json"))
def test_golden(case: Path) -> None:
    check_golden(case)


def test_no_orphan_outputs() -> None:
    assert CASES
    for out in (FIXTURES / "woocommerce").glob("*.output.json"):
        assert out.with_name(out.name.replace(".output.json", ".input.json")).exists(), out


def test_a_signature_made_as_woocommerce_makes_it_is_accepted() -> None:
    body = payload()
    woocommerce.verify({"x-wc-webhook-signature": woo_signature(SECRET, body)}, body, SECRET, "WOOCOMMERCE_WEBHOOK_SECRET")


@pytest.mark.parametrize("headers, body", [
    ({"x-wc-webhook-topic": "order.updated"}, payload()),  # unsigned, and no ping
    ({"x-wc-webhook-signature": woo_signature("other", payload())}, payload()),
    ({"x-wc-webhook-signature": woo_signature(SECRET, payload())}, payload().replace(b'"29.35"', b'"0.01"')),
])  # fmt: skip
def test_a_wrong_or_missing_signature_is_refused_401(headers, body) -> None:
    with pytest.raises(InvalidInput) as info:
        woocommerce.verify(headers, body, SECRET, "WOOCOMMERCE_WEBHOOK_SECRET")
    assert (info.value.code, info.value.status) == ("unauthorized", 401)


def test_the_saving_ping_needs_no_signature_but_nothing_else_passes_unsigned() -> None:
    woocommerce.verify({"content-type": "application/x-www-form-urlencoded"}, b"webhook_id=12", SECRET, "X")
    with pytest.raises(InvalidInput):  # a ping-shaped body with a topic is a delivery: signed or refused
        woocommerce.verify({"x-wc-webhook-topic": "order.updated"}, b"webhook_id=12", SECRET, "X")
    with pytest.raises(InvalidInput):
        woocommerce.verify({}, b"webhook_id=12&status=completed", SECRET, "X")
    with pytest.raises(InvalidInput) as info:  # no secret on the server: the admin sees it when saving
        woocommerce.verify({}, b"webhook_id=12", "", "WOOCOMMERCE_WEBHOOK_SECRET")
    assert info.value.status == 401 and "WOOCOMMERCE_WEBHOOK_SECRET" in info.value.message


def test_every_update_of_a_placed_order_is_one_purchase_event_id() -> None:
    order = json.loads(payload())
    ids = set()
    for status, topic in (("processing", "order.created"), ("completed", "order.updated"), ("completed", "order.updated")):
        order["status"] = status
        ids |= {(e.name, e.event_id) for e in parse_hit(hit(json.dumps(order).encode(), topic))}
    assert ids == {("purchase", "727")}


def test_an_order_not_placed_yet_carries_no_purchase_until_it_is() -> None:
    order = json.loads(payload())
    for status in ("pending", "failed", "cancelled", "checkout-draft"):
        order["status"] = status
        assert parse_hit(hit(json.dumps(order).encode(), "order.created")) == []
    order["status"] = "on-hold"  # a bank transfer awaiting payment: the buyer saw the thank-you page
    assert [e.event_id for e in parse_hit(hit(json.dumps(order).encode()))] == ["727"]


def test_refunds_are_positive_values_with_their_own_ids() -> None:
    events = parse_hit(load_case(FIXTURES / "woocommerce" / "order_723_completed_refunded.input.json"))
    assert [(e.name, e.event_id, e.ecommerce.value) for e in events] == [
        ("purchase", "723", 39.0), ("refund", "refund-726", 10.0), ("refund", "refund-724", 9.0)]
    assert {e.ecommerce.transaction_id for e in events} == {"723"}
    assert len({e.event_uid for e in events}) == 3


def test_the_buyer_comes_from_the_order_and_the_saved_cookies() -> None:
    (event,) = parse_hit(load_case(FIXTURES / "woocommerce" / "order_storefront.input.json"))
    assert event.client.ip == "198.51.100.23" and event.client.user_agent.startswith("Mozilla/5.0 (iPhone")
    assert event.action_source == "website" and event.page.url == "https://example.com/"
    assert event.click_ids.fbc == "fb.1.1490210000000.IwAR0abcDEF_ghi"
    assert event.client.client_id == "987654321.1490200000" and event.client.user_id == "5"
    assert "_download_permissions_granted" not in event.cookies
    assert event.ecommerce.items[1].item_name == "Ship Your Idea – Color: Black, Size: M Test"  # &ndash; unescaped
    assert event.ecommerce.items[1].item_id == "23"  # the variation bought


def test_the_docs_guest_order_has_no_browser_so_it_is_not_a_website_event() -> None:
    (event,) = parse_hit(hit(payload(), "order.created"))
    assert event.client.ip is None and event.client.user_agent is None  # never WooCommerce's Hookshot
    assert event.action_source == "other"
    assert event.user_data.email == "john.doe@example.com" and event.user_data.address.postal_code == "94103"


# --------------------------------------------------------------------------- collect


@pytest.fixture
def collect(tmp_path, monkeypatch):
    monkeypatch.setenv("WOOCOMMERCE_WEBHOOK_SECRET", SECRET)
    c = WebhookCollect(tmp_path)
    yield c
    c.close()


def test_a_signed_order_is_queued_and_answered_with_its_event_id(collect) -> None:
    body = payload()
    headers = {**WOO_HEADERS, "x-wc-webhook-topic": "order.created", "x-wc-webhook-signature": woo_signature(SECRET, body)}
    r = collect.post("/webhooks/woocommerce", body, headers)
    assert r.status_code == 200 and r.json()["event_ids"] == ["727"]
    (raw,) = collect.published()
    assert raw.headers["x-wc-webhook-topic"] == "order.created" and raw.body.encode() == body


def test_the_ping_gets_exactly_200_and_one_ignored_outcome(collect) -> None:
    r = collect.post("/webhooks/woocommerce", b"webhook_id=12",
                     {"content-type": "application/x-www-form-urlencoded", "user-agent": WOO_HEADERS["user-agent"]})
    assert r.status_code == 200  # WC_Webhook::deliver_ping wants 200 exactly
    assert collect.published() == []
    assert collect.rows("SELECT outcome, reason FROM outcomes") == [("filtered", "webhook_ignored")]


def test_a_bad_signature_is_a_401_and_a_failed_event(collect) -> None:
    body = payload()
    headers = {**WOO_HEADERS, "x-wc-webhook-topic": "order.created", "x-wc-webhook-signature": woo_signature("x", body)}
    r = collect.post("/webhooks/woocommerce", body, headers)
    assert r.status_code == 401 and "X-WC-Webhook-Signature" in r.json()["reason"]
    (failure,) = collect.rows("SELECT error_code, payload FROM failed_events")
    assert failure[0] == "unauthorized" and "john.doe@example.com" not in failure[1]
