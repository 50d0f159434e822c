"""[delivery] vendor_concurrency: a batch's vendor requests are in flight together (GA4 takes one user per
request, so a batch is many requests). No timing: a barrier only opens when all the requests are in flight."""

from __future__ import annotations

import threading

import pytest

from tagpipe.config import load_config
from tagpipe.models import RawHit
from tagpipe.pipeline.deliver import Deliverer
from tagpipe.pipeline.stage import settle
from tagpipe.pipeline.transform import Transformer
from tagpipe.runtime import build_runtime
from tagpipe.transport.base import RAW_HITS
from tests.fakes.vendors import FakeVendors

USERS = 3


class GatedHttp:
    """Forwards to the real client; counts requests in flight, and optionally holds each one at a barrier."""

    def __init__(self, client, barrier: threading.Barrier | None) -> None:
        self.client, self.barrier = client, barrier
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0

    def request(self, *args, **kwargs):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.barrier is not None:
                self.barrier.wait()  # raises BrokenBarrierError if the others never arrive
            return self.client.request(*args, **kwargs)
        finally:
            with self.lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.client.close()


def deliver_batch(tmp_path, monkeypatch, concurrency: int, barrier: threading.Barrier | None):
    fakes = FakeVendors().__enter__()
    monkeypatch.setenv("GA4_API_SECRET", fakes.ga4_api_secret)
    path = tmp_path / "tagpipe.toml"
    path.write_text(f"""
[storage]
dir = "{tmp_path / 'data'}"

[delivery]
vendor_concurrency = {concurrency}

[destinations.ga4]
type = "ga4"
measurement_id = "G-TEST123"
endpoint = "{fakes.url}"
""")
    rt = build_runtime(load_config(path))
    http = rt.http = GatedHttp(rt.http, barrier)
    try:
        for i in range(USERS):  # one user each: one GA4 request each
            hit = RawHit(source="json", body=f'{{"event_name": "page_view", "event_id": "e{i}", "client_id": "{i}.1"}}')
            rt.bus.publish(RAW_HITS, hit.model_dump_json().encode())
        for stage in (Transformer(rt), Deliverer(rt)):
            messages = rt.bus.pull(stage.subscription, 100)
            settle(rt.bus, stage.subscription, messages, stage.handle(messages))
        outcomes = rt.store.query("SELECT outcome, reason FROM outcomes WHERE destination = 'ga4'")
        return http, outcomes, len(fakes.ga4.requests)
    finally:
        rt.close()
        fakes.__exit__(None, None, None)


def test_a_batchs_requests_are_in_flight_together(tmp_path, monkeypatch):
    http, outcomes, requests = deliver_batch(tmp_path, monkeypatch, USERS, threading.Barrier(USERS, timeout=30))
    assert requests == USERS and http.max_in_flight == USERS
    assert outcomes == [("delivered", "ok")] * USERS


@pytest.mark.parametrize("concurrency", [1, 2])
def test_never_more_in_flight_than_configured(tmp_path, monkeypatch, concurrency):
    http, outcomes, requests = deliver_batch(tmp_path, monkeypatch, concurrency, None)
    assert requests == USERS and 1 <= http.max_in_flight <= concurrency
    assert outcomes == [("delivered", "ok")] * USERS
