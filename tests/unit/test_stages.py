"""transform -> deliver in one process on the real local queue and store, against fake vendors."""

from __future__ import annotations

import pytest

from tagpipe.config import load_config
from tagpipe.models import RawHit
from tagpipe.pipeline.deliver import Deliverer
from tagpipe.pipeline.stage import settle
from tagpipe.pipeline.transform import Transformer
from tagpipe.runtime import build_runtime
from tagpipe.transport.base import RAW_HITS
from tests.fakes.vendors import FakeVendors


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    with FakeVendors() as fakes:
        monkeypatch.setenv("GA4_API_SECRET", fakes.ga4_api_secret)
        path = tmp_path / "tagpipe.toml"
        path.write_text(f"""
[storage]
dir = "{tmp_path / 'data'}"

[destinations.ga4]
type = "ga4"
measurement_id = "G-TEST123"
endpoint = "{fakes.url}"
""")
        rt = build_runtime(load_config(path))
        yield rt, fakes
        rt.close()


def run_stage(rt, stage) -> int:
    messages = rt.bus.pull(stage.subscription, 100)
    settle(rt.bus, stage.subscription, messages, stage.handle(messages))
    return len(messages)


def test_vendor_limit_notes_reach_the_delivered_outcome(runtime):
    rt, fakes = runtime
    hit = RawHit(source="json", body='{"event_name": "view_item", "client_id": "1.2", "params": {"note": "%s"}}'
                 % ("x" * 150), headers={"user-agent": "Mozilla/5.0"})
    rt.bus.publish(RAW_HITS, hit.model_dump_json().encode())
    assert run_stage(rt, Transformer(rt)) == 1
    assert run_stage(rt, Deliverer(rt)) == 1
    (outcome, detail), = rt.store.query("SELECT outcome, detail FROM outcomes WHERE destination = 'ga4'")
    assert outcome == "delivered"
    assert "ga4:value_truncated" in detail
    (sent,) = fakes.ga4.events
    assert len(sent["params"]["note"]) == 100  # GA4's limit for a parameter value


def test_a_redelivered_task_is_not_sent_twice_nor_recorded_twice(runtime):
    rt, fakes = runtime
    hit = RawHit(source="json", body='{"event_name": "purchase", "event_id": "o-9", "client_id": "1.2"}')
    rt.bus.publish(RAW_HITS, hit.model_dump_json().encode())
    run_stage(rt, Transformer(rt))
    (task,) = rt.bus.pull("deliver", 10)
    rt.bus.nack("deliver", [task.ack_id], delay=0)
    run_stage(rt, Deliverer(rt))
    # the bus delivers the same task again (at-least-once): deliver acks it without sending
    rt.bus.publish("deliveries", task.data, {"destination": "ga4"})
    assert run_stage(rt, Deliverer(rt)) == 1
    assert fakes.ga4.count == 1
    assert rt.store.query("SELECT COUNT(*) FROM outcomes WHERE destination = 'ga4'") == [(1,)]
    assert rt.bus.backlog().get("deliver") is None
