"""The site tag in headless Chromium: a shop page on 127.0.0.1 loads it from the real local stack,
pushes a dataLayer purchase, and the event arrives in the store with the id the page exposes; the
first-party cookies are set (and not set when consent says no)."""

from __future__ import annotations

import json
import re

import pytest

from tagpipe.models import Event
from tests.e2e.stack import wait_until
from tests.privacy.hooks import requires_transform_hooks

FBCLID = "IwAR_Test-Click_1aB"  # case and punctuation kept byte for byte

PAGE = """<!doctype html><html><head><title>Thank you</title>
<script>
  window.dataLayer = window.dataLayer || [];
  function gtag(){dataLayer.push(arguments);}
  gtag('consent', 'default', %(consent)s);
  window.pixelCalls = [];
  window.fbq = function(){ pixelCalls.push(Array.prototype.slice.call(arguments)); };  // the Meta pixel, stubbed
</script>
<script async src="%(stack)s/assets/app.js"></script>
</head><body><h1>Shop</h1></body></html>"""

GRANTED = {"ad_storage": "granted", "analytics_storage": "granted", "ad_user_data": "granted",
           "ad_personalization": "granted"}  # fmt: skip
DENIED = {k: "denied" for k in GRANTED}
BLOCKLIST_WORDS = ("tagpipe", "collect", "track", "gtm", "sst")


def events_named(stack, name: str) -> list[dict]:
    return [Event.model_validate_json(d).model_dump(mode="json")
            for (d,) in stack.store.query("SELECT doc FROM events WHERE name = ?", (name,))]


def event_with_id(stack, event_id: str) -> dict | None:
    rows = stack.store.query("SELECT doc FROM events WHERE event_id = ?", (event_id,))
    # read through the model, as the store's readers do: the document leaves out None fields
    return Event.model_validate_json(rows[0][0]).model_dump(mode="json") if rows else None


def open_page(context, shop, stack, path: str, consent: dict, query: str = ""):
    shop.pages[path] = PAGE % {"consent": json.dumps(consent), "stack": stack.url}
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{shop.url}{path}{query}")
    page.wait_for_function("window.tagpipe && window.tagpipe.lastEventId")
    return page, requests


def test_purchase_arrives_with_the_pages_event_id_and_cookies_are_set(context, shop, stack):
    page, requests = open_page(context, shop, stack, "/thanks", GRANTED, f"?fbclid={FBCLID}")
    page_view_id = page.evaluate("window.tagpipe.lastEventId")
    ids = page.evaluate("""() => {
        const order = {event: 'purchase', ecommerce: {transaction_id: 'T-1001', value: 42.5, currency: 'EUR',
                       items: [{item_id: 'SKU-1', item_name: 'Shoe', price: '42.50', quantity: 1}]},
                       user_data: {email: 'jane@example.com'}, payment_type: 'card'};
        dataLayer.push(order);
        return [window.tagpipe.lastEventId, order.event_id];
    }""")
    exposed, in_datalayer = ids
    assert exposed == in_datalayer and re.fullmatch(r"[0-9a-f-]{36}", exposed)

    purchase = wait_until(lambda: event_with_id(stack, exposed), 15, what="the purchase in the store")
    assert purchase["name"] == "purchase" and purchase["source"] == "json"
    assert purchase["ecommerce"]["value"] == 42.5 and purchase["ecommerce"]["currency"] == "EUR"
    assert purchase["ecommerce"]["transaction_id"] == "T-1001"
    assert purchase["ecommerce"]["items"][0]["item_id"] == "SKU-1" and purchase["ecommerce"]["items"][0]["price"] == 42.5
    assert purchase["params"] == {"payment_type": "card"}
    assert purchase["consent"]["ad_storage"] is True and purchase["consent"]["analytics_storage"] is True
    assert purchase["page"]["url"].endswith(f"/thanks?fbclid={FBCLID}")
    assert purchase["user_data"]["email"] != "jane@example.com"  # stored pseudonymised

    # cookies: set by collect's responses, first-party to 127.0.0.1 (same site as the shop)
    cookies = {c["name"]: c for c in context.cookies(stack.url)}
    assert {"_fpcid", "_fbp", "_fbc"} <= set(cookies), cookies
    assert cookies["_fpcid"]["httpOnly"] and not cookies["_fbp"]["httpOnly"]
    assert cookies["_fpcid"]["sameSite"] == "Lax" and cookies["_fpcid"]["secure"]
    assert cookies["_fbc"]["value"].split(".")[3] == FBCLID and cookies["_fbc"]["value"].startswith("fb.0.")
    assert re.fullmatch(r"fb\.0\.\d{13}\.\d+\.[A-Za-z0-9_-]{8}", cookies["_fbp"]["value"])  # with the builder's appendix

    # the very first hit (the page view) already carried the minted ids, and so did the purchase
    view = wait_until(lambda: event_with_id(stack, page_view_id), 15, what="the page view")
    for ev in (view, purchase):
        assert ev["click_ids"]["fbp"] == cookies["_fbp"]["value"]
        assert ev["click_ids"]["fbc"] == cookies["_fbc"]["value"]

    # ad blockers: nothing the page fetched from the stack has a tell-tale name
    ours = [u for u in requests if u.startswith(stack.url)]
    assert ours and all(u.split("?")[0].endswith(("/assets/app.js", "/events")) for u in ours), ours
    for url in ours:
        assert not any(word in url.lower() for word in BLOCKLIST_WORDS), url


def test_pixel_dedup_pattern(context, shop, stack):
    page, _ = open_page(context, shop, stack, "/product", GRANTED)
    event_id = page.evaluate("""() => {
        const id = tagpipe.track('add_to_cart', {value: 19.99, currency: 'EUR', items: [{item_id: 'SKU-2'}]});
        fbq('track', 'AddToCart', {value: 19.99, currency: 'EUR'}, {eventID: id});
        return id;
    }""")
    calls = page.evaluate("window.pixelCalls")
    assert calls == [["track", "AddToCart", {"value": 19.99, "currency": "EUR"}, {"eventID": event_id}]]
    stored = wait_until(lambda: event_with_id(stack, event_id), 15, what="add_to_cart in the store")
    assert stored["name"] == "add_to_cart" and stored["ecommerce"]["value"] == 19.99
    # an id the shop chose (its order number) is kept
    own = page.evaluate("tagpipe.track('purchase', {event_id: 'ORDER-77', value: 1, currency: 'EUR'})")
    assert own == "ORDER-77"
    wait_until(lambda: event_with_id(stack, "ORDER-77"), 15, what="ORDER-77")


def test_denied_consent_sets_no_cookies_until_granted(context, shop, stack):
    page, _ = open_page(context, shop, stack, "/denied", DENIED, "?fbclid=DeniedClick")
    view_id = page.evaluate("window.tagpipe.lastEventId")
    view = wait_until(lambda: event_with_id(stack, view_id), 15, what="the page view")
    assert view["consent"]["ad_storage"] is False and view["consent"]["analytics_storage"] is False
    assert view["click_ids"]["fbp"] is None and view["client"]["client_id"] is None
    assert context.cookies(stack.url) == []

    # the visitor accepts in the banner: the CMP calls gtag('consent', 'update', ...)
    event_id = page.evaluate("""() => {
        gtag('consent', 'update', {ad_storage: 'granted', analytics_storage: 'granted'});
        return tagpipe.track('sign_up');
    }""")
    after = wait_until(lambda: event_with_id(stack, event_id), 15, what="sign_up")
    assert after["consent"]["ad_storage"] is True
    assert after["consent"]["ad_user_data"] is False  # never updated: the default's denial stands
    names = wait_until(lambda: {c["name"] for c in context.cookies(stack.url)}, 10, what="cookies after consent")
    assert {"_fpcid", "_fbp"} <= names


def test_headless_chrome_is_a_bot_and_gets_no_cookies(browser, shop, stack):
    pytest.importorskip("crawlerdetect", reason="crawlerdetect is not installed (add it to pyproject.toml)")
    ctx = browser.new_context()  # HeadlessChrome user agent
    try:
        page, _ = open_page(ctx, shop, stack, "/bot", GRANTED)
        view_id = page.evaluate("window.tagpipe.lastEventId")
        wait_until(lambda: event_with_id(stack, view_id), 15, what="the bot's page view")
        assert ctx.cookies(stack.url) == []
    finally:
        ctx.close()


@requires_transform_hooks
def test_with_transform_hooks_bots_are_filtered_and_the_client_id_is_the_cookie(browser, context, shop, stack):
    page, _ = open_page(context, shop, stack, "/cid", GRANTED)
    first = page.evaluate("window.tagpipe.lastEventId")
    ev = wait_until(lambda: event_with_id(stack, first), 15, what="page view")
    cookie = {c["name"]: c["value"] for c in context.cookies(stack.url)}["_fpcid"]
    second = page.evaluate("tagpipe.track('view_item')")
    ev2 = wait_until(lambda: event_with_id(stack, second), 15, what="view_item")
    assert ev["client"]["client_id"] == ev2["client"]["client_id"] == cookie

    ctx = browser.new_context()
    try:
        page, _ = open_page(ctx, shop, stack, "/bot2", GRANTED)
        bot_id = page.evaluate("window.tagpipe.lastEventId")
        ev = wait_until(lambda: event_with_id(stack, bot_id), 15, what="the bot's page view")
        rows = wait_until(lambda: stack.store.query("SELECT outcome, reason FROM outcomes WHERE event_uid = ?",
                                                    (ev["event_uid"],)), 15, what="the bot outcome")  # fmt: skip
        assert rows == [("filtered", "bot")]
    finally:
        ctx.close()


EARLY = """<!doctype html><html><head><title>Early</title>
<script>
  window.dataLayer = window.dataLayer || [];
  function gtag(){dataLayer.push(arguments);}
  gtag('consent', 'default', {ad_storage: 'granted', analytics_storage: 'granted', ad_user_data: 'granted'});
  gtag('consent', 'default', {ad_storage: 'denied', region: ['DE', 'FR']});  // region-scoped: its denial counts
  dataLayer.push({event: 'gtm.js'});                                         // GTM plumbing: ignored
  dataLayer.push({event: 'generate_lead', event_id: 'LEAD-1', form: 'contact'});  // before the tag loaded
  gtag('event', 'login', {method: 'email'});                                 // gtag.js sends these itself
</script>
<script src="%(stack)s/assets/app.js" data-ns="shopTag"></script>
</head><body></body></html>"""


def test_entries_pushed_before_the_tag_loaded(context, shop, stack):
    shop.pages["/early"] = EARLY % {"stack": stack.url}
    page = context.new_page()
    page.goto(f"{shop.url}/early")
    page.wait_for_function("window.shopTag && window.shopTag.lastEventId")
    lead = wait_until(lambda: event_with_id(stack, "LEAD-1"), 15, what="the early generate_lead")
    assert lead["params"] == {"form": "contact"}
    assert lead["consent"]["ad_storage"] is False and lead["consent"]["analytics_storage"] is True
    names = {c["name"] for c in context.cookies(stack.url)}
    assert "_fpcid" in names and "_fbp" not in names  # ad_storage denied: no ad cookies
    page.evaluate("shopTag.flush()")
    assert events_named(stack, "gtm.js") == [] and events_named(stack, "login") == []
