"""Tags through the real stages: transform -> local queue -> deliver -> FakeVendors, outcomes in the store."""

from __future__ import annotations

import json
import time

import pytest

from tagpipe.config import load_config
from tagpipe.models import RawHit
from tagpipe.pipeline.deliver import Deliverer
from tagpipe.pipeline.stage import settle
from tagpipe.pipeline.transform import Transformer
from tagpipe.runtime import build_runtime
from tagpipe.transport.base import RAW_HITS
from tests.fakes import FakeVendors

CONFIG = """
[storage]
dir = "{dir}"

[destinations.meta]
type = "meta"
pixel_id = "1234567890"
endpoint = "{url}"

[destinations.hook]
type = "webhook"
endpoint = "{url}/webhook"

[triggers.purchase]
event = "purchase"

[triggers.high_value]
event = "purchase"
var = "value"
gt = 200

[tags.meta_purchase]
destination = "meta"
triggers = ["purchase"]

[tags.meta_high_value]
destination = "meta"
triggers = ["high_value"]
event_name = "HighValuePurchase"
params = {{ aov_tier = "high" }}
"""


@pytest.fixture
def fakes():
    with FakeVendors() as f:
        yield f


@pytest.fixture
def runtime(tmp_path, fakes, monkeypatch):
    monkeypatch.setenv("META_ACCESS_TOKEN", fakes.meta_token)
    monkeypatch.setenv("TAGPIPE_WEBHOOK_SECRET", fakes.webhook_secret)
    path = tmp_path / "tagpipe.toml"
    path.write_text(CONFIG.format(dir=tmp_path / "data", url=fakes.url))
    rt = build_runtime(load_config(path))
    yield rt
    rt.close()


def hit(hit_id: str, value: float) -> RawHit:
    body = {"event_name": "purchase", "event_id": "order-7", "value": value, "currency": "EUR",
            "page_location": "https://shop.example.com/thanks", "user_agent": "Mozilla/5.0 (X11)",
            "client_id": "1.2", "user_data": {"email": "jane@example.com"}}  # fmt: skip
    return RawHit(hit_id=hit_id, received_at=time.time(), source="json", path="/events", body=json.dumps(body),
                  headers={"content-type": "application/json"})  # fmt: skip


def run(rt, *hits: RawHit) -> None:
    for h in hits:
        rt.bus.publish(RAW_HITS, h.model_dump_json().encode())
    for stage in (Transformer(rt), Deliverer(rt)):
        messages = rt.bus.pull(stage.subscription, 100)
        settle(rt.bus, stage.subscription, messages, stage.handle(messages))


def test_two_tags_for_one_destination_are_delivered_and_recorded_separately(runtime, fakes):
    run(runtime, hit("h1", 250.0))
    assert sorted((e["event_name"], e["event_id"]) for e in fakes.meta.events) == [
        ("HighValuePurchase", "order-7"), ("Purchase", "order-7")]
    high = next(e for e in fakes.meta.events if e["event_name"] == "HighValuePurchase")
    assert high["custom_data"]["aov_tier"] == "high"
    assert [e["event_name"] for e in fakes.webhook.events] == ["purchase"]  # no tag names it: default, unchanged
    rows = sorted((uid, dest, outcome) for uid, dest, outcome, _, _ in runtime.store.outcomes_for_hit("h1"))
    assert rows == [("h1:0", "hook", "delivered"), ("h1:0#meta_high_value", "meta", "delivered"),
                    ("h1:0#meta_purchase", "meta", "delivered")]


def test_the_same_event_id_again_is_a_duplicate_per_vendor_event_name(runtime, fakes):
    run(runtime, hit("h1", 250.0))
    run(runtime, hit("h2", 250.0))  # the browser and the server both sent order-7
    assert fakes.meta.count == 2 and not fakes.meta.duplicates(key="event_name")
    rows = sorted((uid, dest, outcome, reason) for uid, dest, outcome, reason, _ in runtime.store.outcomes_for_hit("h2"))
    assert rows == [("h2:0", "hook", "filtered", "duplicate"),
                    ("h2:0#meta_high_value", "meta", "filtered", "duplicate"),
                    ("h2:0#meta_purchase", "meta", "filtered", "duplicate")]


def test_no_tag_fired_is_recorded_once(runtime, fakes):
    body = {"event_name": "add_to_cart", "page_location": "https://shop.example.com/p", "user_agent": "UA"}
    raw = RawHit(hit_id="h3", received_at=time.time(), source="json", path="/events", body=json.dumps(body))
    run(runtime, raw)
    rows = sorted((dest, outcome, reason) for _, dest, outcome, reason, _ in runtime.store.outcomes_for_hit("h3"))
    assert rows == [("hook", "delivered", "ok"), ("meta", "filtered", "no_tag_fired")]
    assert fakes.meta.count == 0
