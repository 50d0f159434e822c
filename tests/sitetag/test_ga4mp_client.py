"""An independent implementation of gtag's protocol drives /g/collect: @analytics-debugger/ga4mp (npm,
pinned in scripts/tools.sh) in headless Chromium, sending its own beacons, and the events collect and
transform decode from them (issue 18, item 4)."""

from __future__ import annotations

import json

from tests.e2e.stack import wait_until
from tests.sitetag.test_browser import events_named
from tests.tools import node_module

PAGE = """<!doctype html><html><head><title>Thanks</title>
<script>%(bundle)s</script></head><body><script>
  const tracker = ga4mp(["G-GA4MP01"], {endpoint: "%(collect)s/g/collect", client_id: "314159.1700000000",
                                         queueDispatchTime: 0});
  tracker.trackEvent("purchase", {transaction_id: "T-GA4MP-1", value: 19.99, currency: "EUR", coupon: "SPRING",
    items: [{item_id: "SKU-1", item_name: "Tee", price: 9.99, quantity: 1},
            {item_id: "SKU-2", item_name: "Cap", price: 10.0, quantity: 1}]});
  tracker.trackEvent("sign_up", {method: "email", plan_tier: 2});
  window.sent = true;
</script></body></html>"""


def test_ga4mp_hits_decode_into_the_events_it_meant(context, shop, stack):
    bundle = (node_module("@analytics-debugger/ga4mp") / "dist" / "ga4mp.umd.js").read_text()
    shop.pages["/ga4mp-thanks"] = PAGE % {"bundle": bundle, "collect": stack.url}
    page = context.new_page()
    beacons: list[str] = []
    page.on("request", lambda r: beacons.append(r.url) if "/g/collect" in r.url else None)
    page.goto(f"{shop.url}/ga4mp-thanks")
    page.wait_for_function("window.sent === true")
    wait_until(lambda: events_named(stack, "purchase") and events_named(stack, "sign_up")
               and any(e["client"]["client_id"] == "314159.1700000000" for e in events_named(stack, "sign_up")),
               what="ga4mp's purchase and sign_up in the store")  # fmt: skip
    assert len(beacons) >= 2 and all(b.startswith(stack.url) for b in beacons)
    [purchase] = [e for e in events_named(stack, "purchase") if e["ecommerce"]["transaction_id"] == "T-GA4MP-1"]
    assert purchase["source"] == "gtag" and purchase["measurement_id"] == "G-GA4MP01"
    assert purchase["client"]["client_id"] == "314159.1700000000"
    assert (purchase["ecommerce"]["value"], purchase["ecommerce"]["currency"]) == (19.99, "EUR")
    items = [(i["item_id"], i["item_name"], i["price"], i["quantity"]) for i in purchase["ecommerce"]["items"]]
    assert items == [("SKU-1", "Tee", 9.99, 1), ("SKU-2", "Cap", 10.0, 1)], json.dumps(purchase["ecommerce"])
    assert purchase["page"]["url"] == f"{shop.url}/ga4mp-thanks" and purchase["page"]["title"] == "Thanks"
    [sign_up] = [e for e in events_named(stack, "sign_up") if e["client"]["client_id"] == "314159.1700000000"]
    assert sign_up["params"]["method"] == "email" and sign_up["params"]["plan_tier"] == 2
    page.close()
