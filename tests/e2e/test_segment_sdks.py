"""The real server-side SDKs send to a running collect by changing only their host (issue 18, item 3):
@segment/analytics-node and @rudderstack/rudder-sdk-node (npm, pinned in scripts/tools.sh, driven by
tests/e2e/segment_sdk_driver.js) and segment-analytics-python (PyPI, the test extra). A proxy on 127.0.0.1 between
the SDK and collect passes the first batch on and answers the SDK 503, as if collect's answer were lost: the SDK
sends the batch again (same messageIds, a new sentAt), collect takes both copies, and the fake Meta (a real HTTP
server that checks the protocol) gets every event exactly once."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.stack import LocalStack, wait_until
from tests.e2e.test_meta_end_to_end import meta_config
from tests.fakes.vendors import FakeVendors
from tests.tools import node_module

WRITE_KEY = "wk_e2e_segment_0123456789"  # a test value, never a real source's
DRIVER = Path(__file__).with_name("segment_sdk_driver.js")
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36"
HOP_BY_HOP = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection"})


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionResetError):  # an SDK closing its keep-alive connection
            super().handle_error(request, client_address)


class DropFirstAnswers:
    """An HTTP proxy on 127.0.0.1 in front of collect. The first `drop` POSTs reach collect, which takes them, and
    then the client gets a 503 instead of collect's answer (with collect's CORS headers, so a page reads it too):
    what a lost answer looks like to an SDK, which then retries. Every other request passes unchanged."""

    def __init__(self, upstream: str, drop: int = 1) -> None:
        self.upstream = urlsplit(upstream)
        self.drop = drop
        self.log: list[tuple[str, str, int, int]] = []  # method, path, collect's status, the client's status
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                proxy.relay(self)

            def do_OPTIONS(self):  # noqa: N802
                proxy.relay(self)

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def relay(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("content-length") or 0))
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            conn.request(handler.command, handler.path, body=body, headers=headers)
            answer = conn.getresponse()
            data, status, answer_headers = answer.read(), answer.status, answer.getheaders()
        finally:
            conn.close()
        with self.lock:
            lost = handler.command == "POST" and self.drop > 0
            self.drop -= lost
        if lost:
            status, data = 503, b'{"error": "the test proxy dropped collect\'s answer"}'
        self.log.append((handler.command, handler.path, answer.status, status))
        handler.send_response(status)
        for name, value in answer_headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                handler.send_header(name, value)
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def posts(self) -> list[tuple[str, int, int]]:
        return [(path, upstream, status) for method, path, upstream, status in self.log if method == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def fakes():
    with FakeVendors() as f:
        yield f


@pytest.fixture(scope="module")
def stack(tmp_path_factory, fakes):
    env = {"META_ACCESS_TOKEN": fakes.meta_token, "SEGMENT_WRITE_KEYS": f"another-source,{WRITE_KEY}"}
    with LocalStack(tmp_path_factory.mktemp("segment") / "stack", meta_config(fakes.url), env) as s:
        yield s


@pytest.fixture
def proxy(stack):
    p = DropFirstAnswers(stack.url)
    yield p
    p.close()


def shop_calls(who: str) -> list[tuple[str, dict]]:
    """What a shop's backend tells Segment about one visitor: the calls every SDK makes here, the same for each
    but for the ids (`who`). The browser's user agent and IP come with them, as a server forwarding web events
    sends them."""
    context = {"ip": "203.0.113.20", "userAgent": UA, "page": {"url": f"https://shop.example/{who}/thanks"},
               "traits": {"email": f"{who}@example.com"}}  # fmt: skip
    user = f"{who}-user"
    return [
        ("identify", {"userId": user, "traits": {"email": f"{who}@example.com", "firstName": "Jane"}}),
        ("page", {"userId": user, "name": "Product", "properties": {"url": f"https://shop.example/{who}/p/1",
                                                                    "title": "Tee"}, "context": context}),
        ("track", {"userId": user, "event": "Product Added", "context": context,
                   "properties": {"product_id": "SKU-1", "name": "Tee", "price": 21.25, "quantity": 2, "currency": "EUR"}}),
        ("track", {"userId": user, "event": "Order Completed", "context": context,
                   "properties": {"order_id": f"{who}-order-1", "total": 42.5, "currency": "EUR",
                                  "products": [{"product_id": "SKU-1", "name": "Tee", "price": 21.25, "quantity": 2}]}}),
    ]  # fmt: skip


def events_of(stack: LocalStack, user: str) -> list[tuple[str, str, str]]:
    return stack.store.query("SELECT event_id, name, hit_id FROM events WHERE user_id = ? ORDER BY ts", (user,))


def meta_outcomes(stack: LocalStack, user: str) -> Counter:
    return Counter(stack.store.query("SELECT e.name, o.outcome, o.reason FROM outcomes o JOIN events e USING "
                                     "(event_uid) WHERE e.user_id = ? AND o.destination = 'meta'", (user,)))


def check_each_landed_once(stack: LocalStack, fakes: FakeVendors, proxy: DropFirstAnswers, who: str) -> None:
    """Every batch the SDK sent reached collect, the one whose answer was lost twice, with the same messageIds;
    Meta got Purchase, AddToCart and PageView once each under those ids; one outcome per event of every copy.
    (An SDK may send its first call alone, as RudderStack's does, so the batches are counted, not assumed.)"""
    user = f"{who}-user"
    posts = proxy.posts()
    assert posts[0][1:] == (200, 503) and all(status == 200 for *_, status in posts[1:]), proxy.log
    assert {path for path, *_ in posts} == {"/v1/batch"}

    def every_batch() -> list[tuple[str, str, str]] | None:
        rows = events_of(stack, user)
        return rows if len({hit for *_, hit in rows}) == len(posts) else None

    rows = wait_until(every_batch, timeout=60, what="every batch the SDK sent in the store")
    ids = {name: event_id for event_id, name, _ in rows}
    assert set(ids) == {"identify", "page_view", "add_to_cart", "purchase"}
    copies = Counter(event_id for event_id, *_ in rows)
    assert 2 in copies.values() and set(copies.values()) <= {1, 2}, copies  # the retry: the same messageIds

    def at_meta() -> list[dict]:
        return [e for e in fakes.meta.events if e.get("event_id") in set(ids.values())]

    try:
        wait_until(lambda: len(at_meta()) >= 3 and sum(meta_outcomes(stack, user).values()) == len(rows), timeout=60,
                   what="Meta's three events and an outcome for each event of every copy")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: at Meta {[e.get('event_name') for e in at_meta()]}, outcomes "
                             f"{dict(meta_outcomes(stack, user))}, refused {fakes.meta.refused}") from None
    got = sorted((e["event_name"], e["event_id"]) for e in at_meta())
    assert got == sorted([("PageView", ids["page_view"]), ("AddToCart", ids["add_to_cart"]),
                          ("Purchase", ids["purchase"])]), got  # fmt: skip
    purchase = next(e for e in at_meta() if e["event_name"] == "Purchase")
    assert (purchase["custom_data"]["value"], purchase["custom_data"]["currency"]) == (42.5, "eur")  # Meta's SDK lowercases it
    assert purchase["custom_data"]["order_id"] == f"{who}-order-1"
    assert purchase["event_source_url"] == f"https://shop.example/{who}/thanks"
    assert purchase["user_data"]["client_user_agent"] == UA
    assert purchase["user_data"]["client_ip_address"] == "203.0.113.20"
    assert all(len(h) == 64 for h in purchase["user_data"]["em"])  # hashed, never the address
    outcomes = meta_outcomes(stack, user)
    for name in ("page_view", "add_to_cart", "purchase"):
        expected = {("delivered", "ok"): 1, **({("filtered", "duplicate"): 1} if copies[ids[name]] == 2 else {})}
        assert {(o, r): n for (event, o, r), n in outcomes.items() if event == name} == expected, outcomes
    assert {(o, r): n for (event, o, r), n in outcomes.items() if event == "identify"} == {
        ("filtered", "not_mapped"): copies[ids["identify"]]}, outcomes


def run_node_sdk(sdk: str, package: str, host: str, calls: list, tmp_path: Path,
                 write_key: str = WRITE_KEY) -> subprocess.CompletedProcess:
    modules = node_module(package).parents[1 if package.startswith("@") else 0]
    calls_file = tmp_path / "calls.json"
    calls_file.write_text(json.dumps(calls))
    return subprocess.run([shutil.which("node") or "node", str(DRIVER), sdk, host, write_key, str(calls_file)],
                          env={"NODE_PATH": str(modules), "PATH": os.environ.get("PATH", "")},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_segment_analytics_node_batches_and_retries_land_once(stack, fakes, proxy, tmp_path):
    done = run_node_sdk("analytics-node", "@segment/analytics-node", proxy.url, shop_calls("ajsnode"), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    check_each_landed_once(stack, fakes, proxy, "ajsnode")


def test_rudderstack_node_gzipped_batches_and_retries_land_once(stack, fakes, proxy, tmp_path):
    done = run_node_sdk("rudder-sdk-node", "@rudderstack/rudder-sdk-node", proxy.url, shop_calls("rudder"), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    check_each_landed_once(stack, fakes, proxy, "rudder")


def test_segment_analytics_python_batches_and_retries_land_once(stack, fakes, proxy):
    from segment.analytics.client import Client  # a dev extra (pyproject), so always there under make test

    failures: list[str] = []
    client = Client(write_key=WRITE_KEY, host=proxy.url, max_retries=5, upload_interval=0.5, upload_size=100,
                    on_error=lambda error, batch: failures.append(str(error)))  # fmt: skip
    for method, params in shop_calls("python"):
        keyword = {"userId": "user_id", "event": "event", "properties": "properties", "traits": "traits",
                   "context": "context", "name": "name"}  # fmt: skip
        getattr(client, method)(**{keyword[k]: v for k, v in params.items()})
    client.flush()
    client.join()
    assert failures == []
    check_each_landed_once(stack, fakes, proxy, "python")


def test_a_wrong_write_key_is_refused_and_recorded_and_the_sdk_gives_up(stack, tmp_path):
    before = len(stack.store.query("SELECT 1 FROM failed_events WHERE error_code = 'unauthorized'"))
    done = run_node_sdk("analytics-node", "@segment/analytics-node", stack.url, shop_calls("wrongkey"), tmp_path,
                        write_key="not-our-key")
    assert done.returncode == 1 and "401" in done.stderr, done.stdout + done.stderr  # a 4xx is not retried
    wait_until(lambda: len(stack.store.query("SELECT 1 FROM failed_events WHERE error_code = 'unauthorized'")) == before + 1,
               what="the refused batch's failed event")
    assert events_of(stack, "wrongkey-user") == []
