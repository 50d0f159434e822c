"""Issue 14, delivery under a slow vendor: a batch is given time in proportion to its size, and a request
that went unanswered is sent again only once its hold is over (no copy overlaps one still at the vendor,
which has had time to record the first and dedup the second on event_id). Real local queue and store,
the fake Meta on 127.0.0.1 (it processes a request whose client gave up, as a real server does)."""

from __future__ import annotations

import json

import pytest

from tagpipe.config import load_config
from tagpipe.models import RawHit
from tagpipe.pipeline.deliver import RESENT_NOTE, Deliverer
from tagpipe.pipeline.transform import Transformer
from tagpipe.runtime import build_runtime
from tagpipe.transport.base import RAW_HITS
from tests.e2e.stack import wait_until
from tests.e2e.test_meta_end_to_end import PIXEL
from tests.fakes.vendors import FakeVendors
from tests.unit.test_dedup_scope import run_stage

UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"


@pytest.fixture
def fakes(monkeypatch):
    with FakeVendors() as f:
        monkeypatch.setenv("META_ACCESS_TOKEN", f.meta_token)
        yield f


@pytest.fixture
def build(tmp_path, fakes):
    runtimes = []

    def build(delivery: str = "", meta: str = ""):
        path = tmp_path / f"tagpipe-{len(runtimes)}.toml"
        if "endpoint" not in meta:
            meta = f'endpoint = "{fakes.url}"\n{meta}'
        path.write_text(f"""
[storage]
dir = "{tmp_path / 'data'}"

[delivery]
min_backoff = 0.01
max_backoff = 0.05
{delivery}

[destinations.meta]
type = "meta"
pixel_id = "{PIXEL}"
{meta}
""")
        rt = build_runtime(load_config(path))
        runtimes.append(rt)
        return rt

    yield build
    for rt in runtimes:
        rt.close()


def publish_purchases(rt, ids: list[str]) -> None:
    for event_id in ids:
        body = json.dumps({"event_name": "purchase", "event_id": event_id, "client_id": "1.2", "value": 5,
                           "currency": "EUR", "page_location": "https://shop.example/thanks",
                           "user_data": {"email": f"{event_id}@example.com"}})
        hit = RawHit(source="json", body=body, headers={"user-agent": UA})
        rt.bus.publish(RAW_HITS, hit.model_dump_json().encode())
    while run_stage(rt, Transformer(rt), 1000):
        pass


def deliver_once(rt) -> int:
    return run_stage(rt, Deliverer(rt), 1000)


def meta_outcomes(rt) -> list[tuple[str, str]]:
    return rt.store.query("SELECT outcome, detail FROM outcomes WHERE destination = 'meta'")


def test_a_batch_slow_in_proportion_to_its_size_is_waited_for_and_sent_once(build, fakes):
    rt = build()
    ids = [f"big-{i}" for i in range(400)]
    publish_purchases(rt, ids)
    fakes.meta.latency_per_event = 0.005  # 2 s for the batch: over Meta's 1.5 s for one event
    assert deliver_once(rt) == 400
    assert len(fakes.meta.requests) == 1  # one batch, answered inside its time-out
    rows = meta_outcomes(rt)
    assert len(rows) == 400 and {o for o, _ in rows} == {"delivered"}
    assert not any(RESENT_NOTE in (d or "") for _, d in rows)
    assert sorted(fakes.meta.event_ids()) == sorted(ids) and fakes.meta.duplicates() == {}


def test_the_time_out_grows_with_the_batch_up_to_its_cap(build):
    meta = build(meta="timeout = 1.5\ntimeout_per_event = 0.01\nmax_timeout = 8").destinations.get("meta")
    assert meta.request_timeout(1) == 1.5
    assert meta.request_timeout(101) == pytest.approx(2.5)
    assert meta.request_timeout(1000) == 8


def test_an_unanswered_request_is_sent_again_only_after_its_hold(build, fakes):
    rt = build("resend_grace = 0.7", "timeout = 0.3\ntimeout_per_event = 0")
    publish_purchases(rt, ["slow-1", "slow-2", "slow-3"])
    fakes.meta.slow_next(1, seconds=1.2)  # the fake gives up on nothing: it records the events late
    assert deliver_once(rt) == 3
    assert meta_outcomes(rt) == []  # timed out: the fate of that copy is unknown
    wait_until(lambda: deliver_once(rt) >= 0 and len(meta_outcomes(rt)) == 3, what="the resend delivered")
    first, second = fakes.meta.requests[0]["at"], fakes.meta.requests[-1]["at"]
    assert second - first >= 0.3 + 0.7  # never before the unanswered copy's hold was over
    rows = meta_outcomes(rt)
    assert {o for o, _ in rows} == {"delivered"} and all(RESENT_NOTE in d for _, d in rows)
    # the slow copy reached the fake as well: a second copy, labelled, with the same event_id for Meta's dedup
    assert fakes.meta.duplicates() == {"slow-1": 2, "slow-2": 2, "slow-3": 2}


def test_an_event_another_attempt_holds_waits_for_that_attempts_hold(build, fakes):
    rt = build()
    publish_purchases(rt, ["held-1"])
    # another worker is sending it now (then it is killed: its journal entry stays, its fate unknown)
    other = rt.store.mark_inflight("meta", ["Purchase:held-1"], hold=1.0)
    assert other.held == {} and other.resent == set()
    assert rt.store.mark_inflight("meta", ["Purchase:held-1"], hold=1.0).resent == set()  # held, not re-journaled
    assert deliver_once(rt) == 1
    assert fakes.meta.requests == [] and meta_outcomes(rt) == []  # no copy beside the one in flight
    wait_until(lambda: deliver_once(rt) >= 0 and meta_outcomes(rt), what="the held event sent after the hold")
    assert fakes.meta.event_ids() == ["held-1"]
    assert RESENT_NOTE in meta_outcomes(rt)[0][1]


def test_a_request_that_never_connected_leaves_nothing_in_flight(build, fakes):
    rt = build(meta='endpoint = "http://127.0.0.1:9"')  # discard port: connection refused
    publish_purchases(rt, ["nc-1"])
    assert deliver_once(rt) == 1
    assert rt.store.query("SELECT COUNT(*) FROM inflight") == [(0,)]  # the vendor cannot have it: no hold, no label
