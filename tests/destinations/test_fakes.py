"""The fault script of FakeVendors, as the reliability tests and benchmarks will use it."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tagpipe.destinations.base import Verdict
from tagpipe.destinations.meta import MetaCapi, MetaSettings
from tagpipe.destinations.webhook import Webhook, WebhookSettings
from tests.destinations.conftest import deliver, make_event, task_for
from tests.fakes import FakeVendors


def meta_for(fakes: FakeVendors, timeout: float = 1.5) -> MetaCapi:
    return MetaCapi("meta", MetaSettings(pixel_id="1", endpoint=fakes.url, timeout=timeout), fakes.secrets("meta"))


def test_fail_then_succeed(fakes: FakeVendors, client, real_now):
    dest = meta_for(fakes)
    task = task_for(dest, make_event(timestamp=real_now - 5))
    fakes.meta.fail_next(2, status=503)
    verdicts = [deliver(dest, [task], client)[1][0][1] for _ in range(3)]
    assert [(r.verdict, r.reason) for r in verdicts] == [(Verdict.RETRY, "meta:2"), (Verdict.RETRY, "meta:2"), (Verdict.OK, "ok")]
    assert fakes.meta.count == 1 and [r["status"] for r in fakes.meta.requests] == [503, 503, 200]


def test_throttle_carries_retry_after(fakes: FakeVendors, client, real_now):
    dest = meta_for(fakes)
    fakes.meta.throttle_next(1, retry_after=3)
    result = deliver(dest, [task_for(dest, make_event(timestamp=real_now - 5))], client)[1][0][1]
    assert (result.verdict, result.reason, result.retry_after) == (Verdict.THROTTLE, "meta:4", 3)


def test_slow_answer_times_out_and_reset_closes_the_connection(fakes: FakeVendors, client, real_now):
    dest = meta_for(fakes, timeout=0.2)
    task = task_for(dest, make_event(timestamp=real_now - 5))
    fakes.meta.slow_next(1, seconds=0.6)
    result = deliver(dest, [task], client)[1][0][1]
    assert (result.verdict, result.reason) == (Verdict.RETRY, "network")
    fakes.meta.reset_next(1)
    result = deliver(dest, [task], client)[1][0][1]
    assert (result.verdict, result.reason) == (Verdict.RETRY, "network")
    assert deliver(dest, [task], client)[1][0][1].verdict is Verdict.OK
    deadline = time.monotonic() + 3
    while fakes.meta.count < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fakes.meta.count == 2  # the slow one was accepted after the client gave up: at-least-once
    assert len(fakes.meta.duplicates()) == 1


def test_concurrent_senders_are_all_recorded(fakes: FakeVendors, real_now):
    hook = Webhook("hook", WebhookSettings(endpoint=f"{fakes.url}/webhook"), fakes.secrets("webhook"))
    errors: list[Exception] = []

    def worker(n: int) -> None:
        try:
            with httpx.Client() as own:
                tasks = [task_for(hook, make_event(n * 100 + i)) for i in range(10)]
                assert deliver(hook, tasks, own)[1][0][1].verdict is Verdict.OK
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and fakes.webhook.count == 80 and not fakes.webhook.duplicates()


def test_unknown_paths_are_404(fakes: FakeVendors, client):
    assert client.post(f"{fakes.url}/nowhere", json={}).status_code == 404


@pytest.mark.parametrize("vendor", ["meta", "ga4", "google_ads", "tiktok", "webhook"])
def test_every_vendor_has_the_same_script(fakes: FakeVendors, vendor):
    state = fakes.vendors[vendor]
    state.fail_next(1)
    state.throttle_next(1)
    state.slow_next(1, 0.01)
    state.reset_next(1)
    assert [f.kind for f in state.faults] == ["fail", "throttle", "slow", "reset"]
    state.reject_token()
    assert state.token_rejected
    fakes.reset()
    assert not state.faults and not state.token_rejected


def test_a_request_cut_off_mid_body_is_dropped_not_refused(fakes: FakeVendors):
    # A sender killed mid-request leaves a short body; the fake must treat it as no request at all
    # (the reliability tests kill the stack mid-send), not as a bad signature or bad JSON.
    where = urlsplit(fakes.url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-Tagpipe-Signature: t=1,v1=00\r\nContent-Length: 100\r\n\r\n{\"events\": [")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1024) == b""  # closed unanswered
    assert fakes.webhook.refused == []
    assert fakes.webhook.requests == []
