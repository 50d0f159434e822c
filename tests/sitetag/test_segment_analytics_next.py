"""Segment's own browser library drives collect (issue 18, item 3): @segment/analytics-next (npm, pinned in
scripts/tools.sh), its UMD build served to a page in headless Chromium. Its settings, which it loads from
cdn.segment.com, come from a local server (`cdnURL`) and point its Segment.io destination at collect (`apiHost`),
through the proxy of tests/e2e/test_segment_sdks.py that loses collect's first answer: the library sends that call
again (same messageId), from the page, as text/plain with Basic auth (so after a CORS preflight), and the fake Meta
gets each event exactly once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.stack import LocalStack, wait_until
from tests.e2e.test_meta_end_to_end import meta_config
from tests.e2e.test_segment_sdks import DropFirstAnswers
from tests.fakes.vendors import FakeVendors
from tests.sitetag.conftest import DESKTOP_UA, PageServer
from tests.tools import node_module

WRITE_KEY = "wk_browser_segment_0123456789"  # a test value; a browser source's write key is public anyway

PAGE = """<!doctype html><html><head><title>Thanks</title>
<script src="%(cdn)s/analytics-next/bundles/index.js"></script></head><body><script>
  window.sent = [];
  const analytics = AnalyticsNext.AnalyticsBrowser.load({writeKey: "%(key)s", cdnURL: "%(cdn)s"});
  analytics.identify("browser-user", {email: "browser.buyer@example.com"});
  analytics.page("Checkout", "Thanks");
  analytics.track("Product Added", {product_id: "SKU-9", name: "Cap", price: 10, quantity: 1, currency: "EUR"});
  analytics.track("Order Completed", {order_id: "BROWSER-1", total: 19.99, currency: "EUR", coupon: "SPRING",
    products: [{product_id: "SKU-9", name: "Cap", price: 10, quantity: 1},
               {product_id: "SKU-3", sku: "T-3", name: "Tee", price: 9.99, quantity: 1}]})
    .then((ctx) => window.sent.push(ctx.event.messageId));
</script></body></html>"""


def settings_cdn(bundles: Path, api_host: str) -> PageServer:
    """cdn.segment.com on 127.0.0.1: the source's settings (/v1/projects/<write key>/settings) and the library's
    own UMD bundles (/analytics-next/bundles/, where it loads its lazy chunks from), readable cross-origin."""
    # the settings a source's CDN answer carries for the Segment.io destination (analytics-next
    # plugins/segmentio: settings.apiKey, apiHost, protocol)
    settings = {"integrations": {"Segment.io": {"apiKey": WRITE_KEY, "apiHost": api_host, "protocol": "http"}},
                "plan": {"track": {"__default": {"enabled": True}}, "identify": {"__default": {"enabled": True}}},
                "enabledMiddleware": {}, "metrics": {"sampleRate": 0}}  # fmt: skip
    files = {f"/v1/projects/{WRITE_KEY}/settings": ("application/json", json.dumps(settings).encode())}
    files.update({f"/analytics-next/bundles/{p.name}": ("text/javascript", p.read_bytes())
                  for p in bundles.glob("*.js")})  # fmt: skip
    return PageServer(files, cors=True)


@pytest.fixture(scope="module")
def fakes():
    with FakeVendors() as f:
        yield f


@pytest.fixture(scope="module")
def segment_stack(tmp_path_factory, fakes):
    env = {"META_ACCESS_TOKEN": fakes.meta_token, "SEGMENT_WRITE_KEYS": WRITE_KEY}
    with LocalStack(tmp_path_factory.mktemp("ajs") / "stack", meta_config(fakes.url), env) as s:
        yield s


def test_analytics_next_in_chromium_lands_each_event_once_through_a_lost_answer(context, shop, segment_stack, fakes):
    bundles = node_module("@segment/analytics-next") / "dist" / "umd"
    proxy = DropFirstAnswers(segment_stack.url)
    cdn = settings_cdn(bundles, api_host=proxy.url.removeprefix("http://") + "/v1")
    try:
        shop.pages["/ajs-thanks"] = PAGE % {"cdn": cdn.url, "key": WRITE_KEY}
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        console: list[str] = []  # the 503 the proxy answers shows here, as a failed resource
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.goto(f"{shop.url}/ajs-thanks")
        try:
            page.wait_for_function("window.sent.length === 1", timeout=30_000)
        except Exception as exc:
            raise AssertionError(f"{exc}: page errors {errors}, console {console}, CDN {cdn.requests}, proxy {proxy.log}") from None
        store = segment_stack.store

        def four_calls() -> list[tuple] | None:
            rows = store.query("SELECT name, event_id, hit_id, doc FROM events WHERE source = 'segment'")
            return rows if {"identify", "page_view", "add_to_cart", "purchase"} <= {n for n, *_ in rows} else None

        rows = wait_until(four_calls, timeout=30, what="the library's four calls in the store")
        assert errors == []
        assert f"/v1/projects/{WRITE_KEY}/settings" in cdn.requests  # the library read its settings from our CDN
        posts = proxy.posts()
        assert posts[0][1:] == (200, 503) and all(s == 200 for *_, s in posts[1:]), proxy.log
        assert {path for path, *_ in posts} <= {"/v1/t", "/v1/p", "/v1/i"}
        assert any(method == "OPTIONS" for method, *_ in proxy.log)  # Basic auth makes the call preflighted
        ids = {name: event_id for name, event_id, *_ in rows}

        def retried() -> list[str]:
            copies = Counter(event_id for (event_id,) in store.query("SELECT event_id FROM events WHERE source = 'segment'"))
            return [event_id for event_id, n in copies.items() if n == 2]

        retried = wait_until(retried, what="the lost call's second copy")
        assert len(retried) == 1 and retried[0] in ids.values()  # sent again under its messageId

        def at_meta() -> list[dict]:
            return [e for e in fakes.meta.events if e.get("event_id") in set(ids.values())]

        wait_until(lambda: len(at_meta()) >= 3, timeout=30, what="the three Meta events")
        got = sorted((e["event_name"], e["event_id"]) for e in at_meta())
        assert got == sorted([("PageView", ids["page_view"]), ("AddToCart", ids["add_to_cart"]),
                              ("Purchase", ids["purchase"])]), got  # fmt: skip
        purchase = next(json.loads(doc) for name, _, _, doc in rows if name == "purchase")
        assert purchase["client"]["user_agent"] == DESKTOP_UA and purchase["client"]["user_id"] == "browser-user"
        assert purchase["page"]["url"] == f"{shop.url}/ajs-thanks" and purchase["page"]["title"] == "Thanks"
        assert [(i["item_id"], i["price"]) for i in purchase["ecommerce"]["items"]] == [("SKU-9", 10.0), ("SKU-3", 9.99)]
        assert (purchase["ecommerce"]["value"], purchase["ecommerce"]["transaction_id"]) == (19.99, "BROWSER-1")
        raw = store.query("SELECT doc FROM raw_hits WHERE source = 'segment'")
        assert raw and all(WRITE_KEY not in doc for (doc,) in raw)  # the key the page sent is never stored
        page.close()
    finally:
        cdn.close()
        proxy.close()
