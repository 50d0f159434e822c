"""The browser side of the webhooks' dedup rule (docs/webhooks.md), run as the docs print it in headless
Chromium: Shopify's checkout pixel sends the order id as the purchase's event id, so the pixel's purchase and
the order's webhook reach a fake Meta (a real HTTP server) as one Purchase; the storefront snippet copies the
ad cookies into the cart's attributes, where the order webhook's note_attributes carry them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import LocalStack, wait_until
from tests.e2e.test_meta_end_to_end import meta_config
from tests.e2e.test_webhooks_orders import SHOPIFY_SECRET, recent, sign
from tests.fakes.vendors import FakeVendors
from tests.sitetag.conftest import PageServer, browser, context  # noqa: F401  (the headless Chromium fixtures)

ROOT = Path(__file__).resolve().parents[2]
ORDER = json.loads((ROOT / "tests" / "fixtures" / "shopify" / "payloads" / "orders_create.json").read_text())


def doc_snippet(name: str) -> str:
    """The code block that follows `<!-- snippet: <name> -->` in docs/webhooks.md."""
    text = (ROOT / "docs" / "webhooks.md").read_text()
    found = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```\w*\n(.*?)\n```", text, re.S)
    assert found, f"docs/webhooks.md has no snippet {name}"
    return found.group(1)


@pytest.fixture
def shop():
    """Pages from 127.0.0.1 on a port of their own, and the POSTs the pages make to it (the cart API)."""
    s = PageServer(post_answer=b'{"attributes": {}}')
    yield s
    s.close()


@pytest.fixture
def fakes():
    with FakeVendors() as f:
        yield f


# Shopify's custom pixel sandbox provides `analytics`; this stands in for it and hands the snippet the
# checkout_completed event (https://shopify.dev/docs/api/web-pixels-api/standard-events/checkout_completed).
SANDBOX = """<!doctype html><html><head><script>
  window.subscribers = {};
  window.analytics = { subscribe: (name, callback) => { window.subscribers[name] = callback; } };
  window.pixelCalls = [];
  window.fbq = (...args) => window.pixelCalls.push(args);
</script><script>%s</script></head><body>Thank you</body></html>"""


def checkout_completed(order: dict, page_url: str, order_id: str) -> dict:
    """The docs' order as the pixel sees it: Checkout {order, totalPrice, currencyCode, lineItems}."""
    return {"name": "checkout_completed", "context": {"document": {"location": {"href": page_url}}},
            "data": {"checkout": {
                "order": {"id": order_id},
                "currencyCode": order["currency"],
                "totalPrice": {"amount": float(order["total_price"]), "currencyCode": order["currency"]},
                "lineItems": [{"title": line["title"], "quantity": line["quantity"], "variant": {
                    "id": line["variant_id"], "price": {"amount": float(line["price"])},
                    "product": {"id": str(line["product_id"])}}} for line in order["line_items"]],
            }}}  # fmt: skip


@pytest.mark.parametrize("pixel_order_id", ["820982911946154508", "gid://shopify/Order/820982911946154508"])
def test_the_checkout_pixel_and_the_order_webhook_reach_meta_as_one_purchase(tmp_path, context, shop, fakes,  # noqa: F811
                                                                              pixel_order_id):
    env = {"META_ACCESS_TOKEN": fakes.meta_token, "SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET}
    with LocalStack(tmp_path / "s", meta_config(fakes.url), env) as stack:
        snippet = doc_snippet("shopify-checkout-pixel").replace("https://collect.your-shop.com", stack.url)
        shop.pages["/thank-you"] = SANDBOX % snippet
        page = context.new_page()
        page.goto(f"{shop.url}/thank-you")
        with page.expect_response(lambda r: r.url == f"{stack.url}/events") as answer:
            page.evaluate("e => window.subscribers.checkout_completed(e)",
                          checkout_completed(ORDER, f"{shop.url}/thank-you", pixel_order_id))
        assert answer.value.status == 200  # (a keepalive fetch's body is not readable from here)
        browser_events = wait_until(lambda: stack.store.query("SELECT event_id, source FROM events"),
                                    what="the pixel's purchase in the store")
        assert browser_events == [("820982911946154508", "json")]
        (fbq_call,) = page.evaluate("window.pixelCalls")
        assert fbq_call[:2] == ["track", "Purchase"] and fbq_call[3] == {"eventID": "820982911946154508"}

        order = {**ORDER, "created_at": recent(30), "processed_at": recent(30)}
        body = json.dumps(order).encode()
        r = httpx.post(f"{stack.url}/webhooks/shopify", content=body, headers={
            "content-type": "application/json", "x-shopify-topic": "orders/paid",
            "x-shopify-shop-domain": "jsmith.myshopify.com", "x-shopify-hmac-sha256": sign(SHOPIFY_SECRET, body)})
        assert r.json()["event_ids"] == [fbq_call[3]["eventID"]]  # the server's id is the pixel's

        outcomes = wait_until(lambda: rows if len(rows := [o for o in stack.outcomes() if o[2] == "meta"]) >= 2
                              else None, what="both purchases' meta outcomes")
        assert sorted((o[3], o[4]) for o in outcomes) == [("delivered", "ok"), ("filtered", "duplicate")]
        assert fakes.meta.event_ids() == ["820982911946154508"]
        (purchase,) = fakes.meta.events
        assert purchase["event_name"] == "Purchase"
        assert [c["id"] for c in purchase["custom_data"]["contents"]] == [
            str(line["product_id"]) for line in ORDER["line_items"]]  # the pixel's item ids are the webhook's
        assert not fakes.meta.refused


def test_the_storefront_snippet_copies_the_ad_cookies_into_the_cart_once(context, shop):  # noqa: F811
    shop.pages["/products/aviator"] = f"<!doctype html><html><head>{doc_snippet('shopify-cart-attributes')}</head></html>"
    context.add_cookies([
        {"name": name, "value": value, "url": shop.url} for name, value in (
            ("_fbp", "fb.1.1640990000000.1098115397"), ("_ga", "GA1.1.1234567890.1640990000"),
            ("_fbc", "fb.1.1640990000000.IwAR0abcDEF_ghi"), ("cart", "c1-7a2f"), ("_shopify_y", "y-1"))
    ])  # fmt: skip
    page = context.new_page()
    page.goto(f"{shop.url}/products/aviator")
    wait_until(lambda: shop.posts, what="the cart update")
    page.wait_for_function("sessionStorage.getItem('tagpipe_cart_cookies')")
    again: list[str] = []
    page.on("request", lambda request: again.append(request.url) if "/cart/" in request.url else None)
    page.goto(f"{shop.url}/products/aviator", wait_until="networkidle")  # the next page: the cart has them
    assert again == []
    (post,) = shop.posts
    assert post[0] == "/cart/update.js"
    assert json.loads(post[1]) == {"attributes": {"_fbp": "fb.1.1640990000000.1098115397",
                                                  "_ga": "GA1.1.1234567890.1640990000",
                                                  "_fbc": "fb.1.1640990000000.IwAR0abcDEF_ghi"}}
