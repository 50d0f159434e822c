"""The site tag in headless Chromium when collect cannot take hits: the store's disk fails read-only
under the running stack, collect answers 503, the tag keeps the events, parks them when the visitor
moves to another page, and that page sends them once the operator has repaired the disk and restarted
the stack. Nothing is lost, nothing is stored twice, and the events keep the time they happened."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.e2e.stack import LocalStack, wait_until
from tests.fakes.disk import Ext4Disk
from tests.sitetag.conftest import DESKTOP_UA
from tests.sitetag.test_browser import GRANTED, PAGE, event_with_id, events_named

OUTBOX = "localStorage.getItem('tagpipe:outbox')"


def stored_once(stack: LocalStack, *event_ids: str) -> dict[str, int]:
    marks = ",".join("?" * len(event_ids))
    rows = stack.store.query(f"SELECT event_id, COUNT(*) FROM events WHERE event_id IN ({marks}) GROUP BY event_id",
                             event_ids)  # fmt: skip
    return dict(rows)


def delivered(stack: LocalStack, event_id: str) -> int:
    rows = stack.store.query("SELECT COUNT(*) FROM outcomes o JOIN events e USING (event_uid)"
                             " WHERE e.event_id = ? AND o.outcome = 'delivered'", (event_id,))  # fmt: skip
    return rows[0][0]


def page_views_of(stack: LocalStack, path: str) -> list[dict]:
    return [e for e in events_named(stack, "page_view") if e["page"]["url"].endswith(path)]


def serve_page(shop, stack, path: str) -> None:
    """A shop page at `path` that loads the site tag from the stack, consent granted."""
    shop.pages[path] = PAGE % {"consent": json.dumps(GRANTED), "stack": stack.url}


def load(context, shop, stack, path: str):
    serve_page(shop, stack, path)
    page = context.new_page()
    page.goto(f"{shop.url}{path}")
    page.wait_for_function("window.tagpipe && window.tagpipe.lastEventId")
    return page


@pytest.fixture
def failing_disk(tmp_path):
    disk = Ext4Disk(tmp_path / "disk", tmp_path / "disk.img")
    if reason := disk.unavailable():
        pytest.skip(reason)
    disk.mount()
    yield disk
    disk.unmount()


@pytest.fixture
def stack_on(failing_disk, tmp_path):
    stack = LocalStack(tmp_path / "s", '[destinations.dry_run]\ntype = "log"\n', data_dir=failing_disk.path / "data")
    stack.start()
    yield stack
    stack.kill()


def test_the_tag_keeps_events_through_a_failed_disk_and_a_page_change(browser, shop, failing_disk, stack_on):
    stack = stack_on
    context = browser.new_context(user_agent=DESKTOP_UA)

    def refused(r) -> bool:
        return r.url.startswith(f"{stack.url}/events") and r.status == 503

    try:
        page = load(context, shop, stack, "/product")
        view_a = page.evaluate("window.tagpipe.lastEventId")
        wait_until(lambda: event_with_id(stack, view_a), 15, what="the first page view (healthy)")

        os.sync()  # what was committed so far is on the disk before it fails (see test_faults)
        failing_disk.fail()
        with page.expect_response(refused, timeout=15_000):  # collect refuses the add_to_cart
            cart = page.evaluate("""() => { dataLayer.push({event: 'add_to_cart',
                ecommerce: {value: 19.9, currency: 'EUR', items: [{item_id: 'SKU-9', price: 19.9, quantity: 1}]}});
                return window.tagpipe.lastEventId; }""")
        tracked_before = time.time()

        # the visitor moves on while collect still fails: this page parks the event, the next claims it
        serve_page(shop, stack, "/cart")
        with page.expect_response(refused, timeout=15_000):  # the next page's tag tries, and is refused
            page.goto(f"{shop.url}/cart")
        assert page.evaluate(OUTBOX) is None  # claimed by this page, held in memory while it retries

        # the operator: take the stack down, repair the file system, start it again
        stack.kill()
        failing_disk.repair()
        stack.start()
        recovered = time.time()

        wait_until(lambda: event_with_id(stack, cart) and page_views_of(stack, "/cart"), 90,
                   what="the tag's retries to land after the repair")  # fmt: skip
        (view_b,) = [e["event_id"] for e in page_views_of(stack, "/cart")]
        assert stored_once(stack, view_a, cart, view_b) == {view_a: 1, cart: 1, view_b: 1}
        wait_until(lambda: delivered(stack, cart) and delivered(stack, view_b), 30, what="both delivered")
        assert delivered(stack, cart) == 1 and delivered(stack, view_b) == 1
        # the event keeps the time it happened (the tag's age_ms), not the time it finally arrived
        stored = event_with_id(stack, cart)
        assert stored["timestamp"] <= tracked_before < recovered, (stored["timestamp"], tracked_before, recovered)
        assert stored["ecommerce"]["value"] == 19.9 and stored["page"]["url"].endswith("/product")
        assert page.evaluate(OUTBOX) is None
    finally:
        context.close()


def test_a_healthy_page_exit_hands_the_queue_over_once(browser, shop, stack_on):
    """While collect answers, an event pushed just before leaving goes by sendBeacon and is not parked:
    the next page does not send it again."""
    stack = stack_on
    context = browser.new_context(user_agent=DESKTOP_UA)
    try:
        page = load(context, shop, stack, "/list")
        view_a = page.evaluate("window.tagpipe.lastEventId")
        wait_until(lambda: event_with_id(stack, view_a), 15, what="the page view")
        serve_page(shop, stack, "/item")
        click = page.evaluate("""() => { dataLayer.push({event: 'select_item', item_list_name: 'shoes'});
            const id = window.tagpipe.lastEventId; location.href = '/item'; return id; }""")
        page.wait_for_url(f"{shop.url}/item")
        wait_until(lambda: event_with_id(stack, click) and page_views_of(stack, "/item"), 15, what="both events")
        (view_b,) = [e["event_id"] for e in page_views_of(stack, "/item")]
        assert page.evaluate(OUTBOX) is None
        assert stored_once(stack, view_a, click, view_b) == {view_a: 1, click: 1, view_b: 1}
    finally:
        context.close()


def set_visibility(page, state: str) -> None:
    """What the browser does when the tab goes to the background or comes back (headless tabs never do)."""
    page.evaluate("""(state) => {
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => state});
        document.dispatchEvent(new Event('visibilitychange'));
    }""", state)


@pytest.fixture
def plain_stack(tmp_path):
    stack = LocalStack(tmp_path / "s", '[destinations.dry_run]\ntype = "log"\n')
    stack.start()
    yield stack
    stack.kill()


def test_two_tabs_share_the_outbox_and_each_event_is_sent_once(browser, shop, plain_stack):
    """collect is down (the stack killed): a tab going to the background parks its failed event; a new
    tab of the site claims and sends it once collect is back; the first tab, back in the foreground,
    finds it claimed and does not send it again."""
    stack = plain_stack
    context = browser.new_context(user_agent=DESKTOP_UA)
    try:
        first = load(context, shop, stack, "/a")
        wait_until(lambda: page_views_of(stack, "/a"), 15, what="the first tab's page view (healthy)")
        stack.kill()
        with first.expect_event("requestfailed", timeout=15_000):  # collect is gone: a network error
            cart = first.evaluate("""() => { dataLayer.push({event: 'add_to_cart', ecommerce: {value: 5, currency: 'EUR'}});
                return window.tagpipe.lastEventId; }""")
        set_visibility(first, "hidden")
        assert cart in (first.evaluate(OUTBOX) or "")  # parked for whichever page of the site comes next

        second = context.new_page()
        serve_page(shop, stack, "/b")
        with second.expect_event("requestfailed", timeout=15_000):  # it claimed the event and tries
            second.goto(f"{shop.url}/b")
        assert second.evaluate(OUTBOX) is None
        stack.start()  # collect is back, same address
        wait_until(lambda: event_with_id(stack, cart) and page_views_of(stack, "/b"), 60,
                   what="the second tab's retry to land")  # fmt: skip

        set_visibility(first, "visible")  # the first tab takes back only what nobody claimed: nothing
        scroll = first.evaluate("() => { dataLayer.push({event: 'scroll'}); return window.tagpipe.lastEventId; }")
        wait_until(lambda: event_with_id(stack, scroll), 60, what="the first tab's next event")
        assert stored_once(stack, cart, scroll) == {cart: 1, scroll: 1}
        assert first.evaluate(OUTBOX) is None and second.evaluate(OUTBOX) is None
    finally:
        context.close()
