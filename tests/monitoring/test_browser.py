"""The dashboard and the debug view in headless Chromium (Playwright, /usr/bin/chromium).

Skipped with a message when Chromium or Playwright is missing, unless TAGPIPE_REQUIRE_BROWSER=1.
Screenshots are saved under the test's tmp dir (printed with -s)."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest

from tagpipe.monitoring.alerts import AlertEvaluator
from tagpipe.monitoring.config import MonitoringConfig
from tagpipe.monitoring.dashboard import DashboardServer, create_dashboard_app
from tests.fakes.vendors import FakeVendors
from tests.monitoring.conftest import Clock, free_port
from tests.monitoring.scenario import (
    PII_EMAIL,
    PII_PHONE,
    PII_PHONE_DIGITS,
    add,
    add_hits,
    fill_history,
    traced_pipeline,
)

CHROMIUM = os.environ.get("TAGPIPE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def _browser_or_skip():
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem, sync_playwright = "Playwright is not installed (pip install playwright)", None
    if problem is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problem = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    if problem:
        if os.environ.get("TAGPIPE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (TAGPIPE_REQUIRE_BROWSER=1) but {problem}")
        pytest.skip(f"browser tests skipped: {problem}")
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A store as a shop would have it after a bad quarter hour for Meta, served on 127.0.0.1."""
    _browser_or_skip()
    tmp = tmp_path_factory.mktemp("dash")
    hits = [
        {"path": "/events", "headers": {"x-tagpipe-debug": "checkout-test", "user-agent": "Mozilla/5.0 (X11) Chrome/131"},
         "json": {"event_name": "purchase", "event_id": "order-1001", "value": 42.5, "currency": "EUR",
                  "page_location": "https://shop.example/thanks", "user_data": {"email": PII_EMAIL, "phone": PII_PHONE}}},
        {"path": "/g/collect", "method": "GET", "headers": {"cookie": "_fbp=fb.1.1700000000000.42424242"},
         "query": "v=2&tid=G-TEST123&cid=555.666&en=page_view&dl=https%3A%2F%2Fshop.example%2F&tp_debug=checkout-test"
                  "&ep.user_data.email=" + PII_EMAIL.replace("@", "%40")},
    ]
    with FakeVendors() as fakes, pytest.MonkeyPatch.context() as mp:
        rt = traced_pipeline(tmp, fakes, mp, hits)
        broken = [{"path": "/events", "headers": {"x-tagpipe-debug": "token-expired"},
                   "json": {"event_name": "purchase", "event_id": "order-1002", "page_location": "https://shop.example/",
                            "user_data": {"email": PII_EMAIL}}}]
        traced_pipeline(tmp, fakes, mp, broken, break_meta=True)
    now = time.time() + 1
    store = rt.store
    fill_history(store, now, per_hour=30)
    for m in range(50):
        at = now - m * 60 - 20
        add_hits(store, at, 30)
        add(store, "meta", "delivered", at, 20, identifiers=["em", "fbp"] + (["ph"] if m % 2 else []))
        add(store, "meta", "filtered", at, 1, "duplicate")
        add(store, "ga4", "delivered", at, 25, identifiers=["client_id"])
        add(store, "ga4", "filtered", at, 3, "consent")
        if m < 10:
            add(store, "meta", "dead_lettered", at, 9, "meta:190", detail="access token expired or invalid")
    add(store, "*", "rejected", now - 300, 6, "invalid_json", detail="body is not valid JSON")
    types = {"meta": "meta", "ga4": "ga4", "dry_run": "log"}
    AlertEvaluator(store, MonitoringConfig().effective_rules(), [], tmp / "data", clock=Clock(now),
                   destination_types=types).evaluate()
    app = create_dashboard_app(store=store, bus=rt.bus, destination_types=types, state_dir=tmp / "data",
                               clock=Clock(now), token="")
    server = DashboardServer(app, "127.0.0.1", free_port(), token_set=False)
    assert server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=True)  # lets wait_for_function poll; the page itself keeps its CSP
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    context.close()
    assert errors == [], errors


def png_pixels(data: bytes):
    """(width, height, rows of RGB(A) bytes) of an 8-bit non-interlaced PNG, as Chromium writes them."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and ctype in (2, 6)
        elif kind == b"IDAT":
            idat += chunk
    raw, bpp = zlib.decompress(idat), (3 if ctype == 2 else 4)
    stride, rows, prev, i = w * bpp, [], bytearray(w * bpp), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def coloured_pixels(png: bytes) -> int:
    """Pixels with a clear hue (chart ink), not white, grey or black."""
    w, h, bpp, rows = png_pixels(png)
    n = 0
    for row in rows:
        for x in range(0, w * bpp, bpp):
            r, g, b = row[x], row[x + 1], row[x + 2]
            if max(r, g, b) - min(r, g, b) > 60:
                n += 1
    return n


def assert_no_pii(html: str) -> None:
    lowered = html.lower()
    for needle in (PII_EMAIL, PII_EMAIL.split("@")[0], PII_PHONE, PII_PHONE_DIGITS, "555-0199", "5550199",
                   hashlib.sha256(PII_EMAIL.encode()).hexdigest()):
        assert needle.lower() not in lowered, f"{needle!r} appears in the page"


def test_overview_numbers_and_charts(site, page, tmp_path):
    page.goto(site + "/")
    page.wait_for_selector("body[data-ready='1']")
    api = page.request.get(site + "/api/summary?window=1h").json()
    t = api["totals"]
    assert (t["delivered"], t["dead_lettered"]) == (1000 + 1250 + 5, 90 + 1)  # synthetic + the traced hits

    def kpi(key):
        return page.locator(f"[data-kpi='{key}'] .value").inner_text()

    assert kpi("delivered") == f"{t['delivered']:,}"
    assert kpi("hits") == f"{t['hits']:,}" and t["hits"] == 1500 + 3
    assert kpi("failed") == "91"
    assert kpi("filtered") == f"{t['filtered']:,}"

    meta = page.locator("[data-dest='meta']")
    assert meta.locator("[data-field='dead_lettered'] b").inner_text() == "91"
    assert meta.locator("[data-field='delivered'] b").inner_text() == "1,002"
    assert meta.locator("[data-field='failure_rate']").inner_text().startswith("8.3% failed · usual ")
    assert meta.locator("[data-key='em'] [data-field='share']").inner_text() == "100%"
    assert meta.locator("[data-key='ph'] [data-field='share']").inner_text() == "50%"
    # the estimate: em + fbp = 3.9 of 10, with ph 5.9; half the purchases each (and a few traced ones)
    score = float(meta.locator("[data-field='emq'] tr[data-event='purchase'] [data-field='score']").inner_text())
    assert 4.5 <= score <= 5.3, score
    assert page.locator("[data-dest='ga4'] [data-field='emq']").count() == 0  # no score where it means nothing
    reason = page.locator("#reasons [data-reason='meta:190']")
    assert "the access token expired" in reason.inner_text()
    assert reason.locator("[data-field='count']").inner_text() == "91"
    assert page.locator("#filtered [data-reason='consent'] [data-field='count']").inner_text() == "150"
    assert page.locator("#collect [data-reason='invalid_json'] [data-field='count']").inner_text() == "6"
    banner = page.locator("#alerts [data-alert='delivery_failure_rate']").inner_text()
    assert "Meta: 23% of events failed in the last 15 minutes (was " in banner

    # the charts are drawn: sized SVG shapes, and coloured pixels where they are
    hits_line = page.locator("#chart-traffic path[data-series='hits']").bounding_box()
    assert hits_line["width"] > 500 and hits_line["height"] > 50
    assert page.locator("#chart-outcomes rect[data-series='delivered']").count() >= 50
    assert page.locator("#chart-outcomes rect[data-series='dead_lettered']").count() >= 10
    for chart, ink in (("#chart-traffic", 1500), ("#chart-outcomes", 8000)):  # lines vs. filled bars
        assert coloured_pixels(page.locator(chart).screenshot()) > ink, chart
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 30_000
    print(f"\nscreenshot: {shot}")
    assert_no_pii(page.content())


def test_window_switch_redraws(site, page):
    page.goto(site + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.click("[data-window='24h']")
    page.wait_for_function("document.querySelectorAll('#chart-outcomes rect').length > 0 && "
                           "document.querySelector('[data-window=\"24h\"]').className === 'active'")
    api = page.request.get(site + "/api/summary?window=24h").json()
    page.wait_for_function(f"document.querySelector(\"[data-kpi='delivered'] .value\").textContent === "
                           f"'{api['totals']['delivered']:,}'")


def test_debug_view_traces_each_stage_without_pii(site, page, tmp_path):
    page.goto(site + "/#debug")
    page.wait_for_selector("[data-token='checkout-test']")
    assert page.locator("[data-token]").count() == 2
    page.click("[data-token='checkout-test']")
    page.wait_for_selector("[data-hit]")
    assert page.locator("[data-hit]").count() == 2
    for summary in page.locator("#trace details summary").all():
        summary.click()
    text = page.locator("#trace").inner_text()
    assert "1 · Received by collect" in text and "2 · Parsed into 1 event" in text
    assert "purchase · event_id order-1001" in text and "page_view" in text
    row = page.locator("[data-hit] tr[data-destination='meta']").first
    assert "delivered" in row.inner_text() and "HTTP 200" in row.inner_text()
    assert "access_token=***" in row.inner_text()
    assert "[redacted]" in text and "sha256:" in text
    page.screenshot(path=str(tmp_path / "debug.png"), full_page=True)
    assert_no_pii(page.content())

    page.click("[data-token='token-expired']")
    page.wait_for_selector("text=the access token expired")
    meta = page.locator("[data-hit] tr[data-destination='meta']")
    assert "dead-lettered" in meta.inner_text() and "meta:190" in meta.inner_text() and "HTTP 400" in meta.inner_text()
    assert_no_pii(page.content())


def test_find_an_event_by_its_order_id_or_client_id(site, page, tmp_path):
    page.goto(site + "/#debug")
    page.wait_for_selector("#lookup-q")
    page.fill("#lookup-q", "order-1002")
    page.press("#lookup-q", "Enter")
    page.wait_for_selector("[data-hit] tr[data-destination='meta']")
    assert page.url.endswith("#lookup/order-1002")
    meta = page.locator("[data-hit] tr[data-destination='meta']")
    assert "dead-lettered" in meta.inner_text() and "attempt 1 ·" in meta.inner_text()
    assert "meta:190" in page.locator("[data-failure]").first.inner_text()  # the dead letter is on record too
    page.fill("#lookup-q", "555.666")  # the gtag hit's client id
    page.press("#lookup-q", "Enter")
    page.wait_for_function("document.querySelector('#trace h2').innerText.includes('555.666')")
    assert page.locator("[data-hit]").count() == 1 and "page_view" in page.locator("[data-hit]").inner_text()
    page.screenshot(path=str(tmp_path / "lookup.png"), full_page=True)
    assert coloured_pixels((tmp_path / "lookup.png").read_bytes()) > 500  # the badges are drawn
    page.fill("#lookup-q", "no-such-order")
    page.press("#lookup-q", "Enter")
    page.wait_for_selector("text=Nothing on record for this id.")
    assert_no_pii(page.content())


def test_test_a_destination_from_the_dashboard(browser, tmp_path):
    from tagpipe.config import Config
    from tagpipe.runtime import Runtime
    from tagpipe.storage.sqlite import SqliteStore

    with FakeVendors() as fakes:
        config = Config(storage={"dir": str(tmp_path / "data")}, destinations={
            "meta": {"type": "meta", "pixel_id": "123456789012345", "endpoint": fakes.url},
            "ga4": {"type": "ga4", "measurement_id": "G-TEST123", "endpoint": fakes.url},
            "linkedin": {"type": "linkedin", "conversion_rules": {"purchase": "104012"}, "endpoint": fakes.url}})  # fmt: skip
        env = {"META_ACCESS_TOKEN": fakes.meta_token, "GA4_API_SECRET": "not-the-secret",
               "LINKEDIN_ACCESS_TOKEN": fakes.ad_tokens["linkedin"]}
        rt = Runtime(config, bus=None, store=SqliteStore(config.storage.dir), secrets_from=env)  # type: ignore[arg-type]
        from tagpipe.ops.test_send import send_test_event

        app = create_dashboard_app(rt, token="", test_sender=send_test_event)
        server = DashboardServer(app, "127.0.0.1", free_port(), token_set=False)
        assert server.start()
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        try:
            page.goto(f"http://127.0.0.1:{server.port}/#debug")
            page.wait_for_selector("#tester:not([hidden]) option[value='meta']", state="attached")
            page.select_option("#test-dest", "meta")
            page.fill("#test-code", "TEST777")
            page.click("#test-send button")
            page.wait_for_selector("#test-result")
            result = page.locator("#test-result")
            assert result.get_attribute("data-ok") == "1" and "accepted" in result.inner_text()
            assert "test event code TEST777" in result.inner_text()
            assert fakes.meta.count == 1
            page.screenshot(path=str(tmp_path / "test-send.png"), full_page=True)

            page.select_option("#test-dest", "ga4")
            page.click("#test-send button")
            page.wait_for_selector("#test-result >> text=validation only")
            assert page.locator("#test-result").get_attribute("data-ok") == "1" and fakes.ga4.count == 0

            fakes.meta.reject_token()  # the token was revoked in Business Manager
            fakes.meta.expect_refusal("token")
            page.select_option("#test-dest", "meta")
            page.click("#test-send button")
            page.wait_for_selector("#test-result[data-ok='0']")
            assert "the access token expired" in page.locator("#test-result").inner_text()
            assert fakes.meta_token not in page.content() and "not-the-secret" not in page.content()
            # LinkedIn has no test mode: the first click sends nothing and offers a live send
            page.select_option("#test-dest", "linkedin")
            page.click("#test-send button")
            page.wait_for_selector("#test-send-live")
            assert "no test mode" in page.locator("#test-result").inner_text() and fakes.linkedin.count == 0
            page.click("#test-send-live")
            page.wait_for_selector("#test-result[data-ok='1'] >> text=real conversion")
            assert fakes.linkedin.count == 1
            # a page elsewhere cannot make the dashboard send: no custom header, no send
            r = page.request.post(f"http://127.0.0.1:{server.port}/api/test-send/meta", data="{}")
            assert r.status == 400 and fakes.meta.count == 1
        finally:
            context.close()
            server.close()
