"""Shop order webhooks through the real local stack to a fake Meta CAPI (a real HTTP server that checks the
protocol): one order is one Purchase whose event_id is the order id (what the storefront pixel sends,
docs/webhooks.md), however many topics and retries deliver it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import LocalStack, wait_until
from tests.e2e.test_meta_end_to_end import meta_config
from tests.fakes.vendors import FakeVendors

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHOPIFY_SECRET = "shpss_e2e_0123456789abcdef"
WOO_SECRET = "e2e,woo;secret&with'punctuation"


@pytest.fixture
def fakes():
    with FakeVendors() as f:
        yield f


def sign(secret: str, body: bytes) -> str:
    """Both shops' signature: base64 of HMAC-SHA256 over the raw body (Shopify "Verify webhooks";
    WC_Webhook::generate_signature)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def recent(seconds_ago: float) -> str:
    """Meta takes events up to 7 days old: the docs' examples are from 2017 and 2021, so their dates move."""
    return datetime.fromtimestamp(time.time() - seconds_ago, UTC).isoformat(timespec="seconds")


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def meta_outcomes(stack: LocalStack, n: int) -> list[tuple]:
    return wait_until(lambda: rows if len(rows := [o for o in stack.outcomes() if o[2] == "meta"]) >= n else None,
                      what=f"{n} meta outcomes")


def test_a_shopify_order_reaches_meta_once_through_create_paid_and_retries(tmp_path, fakes):
    order = json.loads((FIXTURES / "shopify" / "payloads" / "orders_create.json").read_text())
    order["created_at"] = order["processed_at"] = recent(120)
    body = json.dumps(order).encode()
    refund = json.loads((FIXTURES / "shopify" / "payloads" / "refunds_create.json").read_text())
    refund["created_at"] = refund["processed_at"] = recent(60)
    refund_body = json.dumps(refund).encode()
    env = {"META_ACCESS_TOKEN": fakes.meta_token, "SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET}

    def deliver(topic: str, payload: bytes, webhook_id: str, secret: str = SHOPIFY_SECRET) -> httpx.Response:
        return httpx.post(f"{stack.url}/webhooks/shopify", content=payload, headers={
            "content-type": "application/json", "user-agent": "Shopify-Captain-Hook",
            "x-shopify-topic": topic, "x-shopify-shop-domain": "jsmith.myshopify.com",
            "x-shopify-webhook-id": webhook_id, "x-shopify-hmac-sha256": sign(secret, payload)})

    with LocalStack(tmp_path / "s", meta_config(fakes.url), env) as stack:
        assert deliver("orders/create", body, "wh-create").json()["event_ids"] == ["820982911946154508"]
        wait_until(lambda: fakes.meta.count >= 1, what="the purchase at the fake Meta")
        # Shopify's retry of the same delivery (same webhook id), then orders/paid for the same order
        assert deliver("orders/create", body, "wh-create").status_code == 200
        assert deliver("orders/paid", body, "wh-paid").status_code == 200
        assert deliver("refunds/create", refund_body, "wh-refund").status_code == 200
        forged = deliver("orders/create", body, "wh-forged", secret="not-the-shops-secret")
        assert forged.status_code == 401 and forged.json()["error"] == "unauthorized"

        outcomes = meta_outcomes(stack, 4)  # 3 purchases and the refund
        by_reason = sorted((o[3], o[4]) for o in outcomes)
        assert by_reason == [("delivered", "ok"), ("filtered", "duplicate"), ("filtered", "duplicate"),
                             ("filtered", "not_mapped")]  # Meta's mapping has no refund event
        assert fakes.meta.event_ids() == ["820982911946154508"]
        assert fakes.meta.duplicates() == {}
        (purchase,) = fakes.meta.events
        assert purchase["event_name"] == "Purchase" and purchase["action_source"] == "other"
        assert purchase["custom_data"]["value"] == pytest.approx(359.97)
        assert purchase["custom_data"]["currency"].lower() == "usd"
        assert [c["id"] for c in purchase["custom_data"]["contents"]] == [
            "788032119674292922", "788032119674292923", "788032119674292924"]
        assert sorted(purchase["user_data"]["em"]) == sorted([sha("jon@example.com"), sha("john@example.com")])
        assert "client_ip_address" not in purchase["user_data"]  # the webhook's sender is Shopify, not the buyer
        assert not fakes.meta.refused

        rejected = stack.store.query("SELECT error_code, payload FROM failed_events WHERE stage = 'collect'")
        assert [r[0] for r in rejected] == ["unauthorized"]
        assert "jon@example.com" not in rejected[0][1]
        assert "jon@example.com" not in stack.logs() and SHOPIFY_SECRET not in stack.logs()


def test_a_woocommerce_order_reaches_meta_once_as_it_moves_through_statuses(tmp_path, fakes):
    order = json.loads((FIXTURES / "woocommerce" / "payloads" / "order_727_processing.json").read_text())
    order["date_created_gmt"] = recent(300)[:19]  # WooCommerce's *_gmt dates carry no offset
    order["customer_ip_address"] = "198.51.100.23"
    order["customer_user_agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
    env = {"META_ACCESS_TOKEN": fakes.meta_token, "WOOCOMMERCE_WEBHOOK_SECRET": WOO_SECRET}

    def deliver(topic: str, status: str) -> httpx.Response:
        body = json.dumps({**order, "status": status}).encode()
        return httpx.post(f"{stack.url}/webhooks/woocommerce", content=body, headers={
            "content-type": "application/json", "user-agent": "WooCommerce/9.9.5 Hookshot (WordPress/6.8.1)",
            "x-wc-webhook-source": "https://example.com/", "x-wc-webhook-topic": topic,
            "x-wc-webhook-signature": sign(WOO_SECRET, body)})

    with LocalStack(tmp_path / "w", meta_config(fakes.url), env) as stack:
        ping = httpx.post(f"{stack.url}/webhooks/woocommerce", content=b"webhook_id=12",
                          headers={"content-type": "application/x-www-form-urlencoded"})
        assert ping.status_code == 200
        assert deliver("order.created", "pending").json()["events"] == 0  # not paid yet: nothing to send
        assert deliver("order.updated", "processing").json()["event_ids"] == ["727"]
        wait_until(lambda: fakes.meta.count >= 1, what="the purchase at the fake Meta")
        assert deliver("order.updated", "completed").json()["event_ids"] == ["727"]

        outcomes = meta_outcomes(stack, 2)
        assert sorted((o[3], o[4]) for o in outcomes) == [("delivered", "ok"), ("filtered", "duplicate")]
        ignored = [o for o in stack.outcomes() if o[4] == "webhook_ignored"]
        assert len(ignored) == 2  # the ping and the pending order, one outcome each
        (purchase,) = fakes.meta.events
        assert purchase["event_id"] == "727" and purchase["event_name"] == "Purchase"
        assert purchase["action_source"] == "website" and purchase["event_source_url"] == "https://example.com/"
        assert purchase["user_data"]["client_ip_address"] == "198.51.100.23"
        assert purchase["user_data"]["em"] == [sha("john.doe@example.com")]
        assert purchase["custom_data"]["value"] == pytest.approx(29.35)
        assert not fakes.meta.refused
