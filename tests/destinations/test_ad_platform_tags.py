"""Tags and triggers drive the issue-20 destinations unchanged: through transform -> queue -> deliver -> fakes."""

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

[destinations.pinterest]
type = "pinterest"
ad_account_id = "549755885175"
endpoint = "{url}"

[destinations.reddit]
type = "reddit"
pixel_id = "a2_fake123"
endpoint = "{url}"

[triggers.high_value]
event = "purchase"
var = "value"
gt = 200

[tags.pinterest_lead]
destination = "pinterest"
triggers = ["high_value"]
event_name = "lead"

[tags.reddit_purchase]
destination = "reddit"
triggers = ["high_value"]
"""


@pytest.fixture
def fakes():
    with FakeVendors() as f:
        yield f


@pytest.fixture
def runtime(tmp_path, fakes, monkeypatch):
    monkeypatch.setenv("PINTEREST_ACCESS_TOKEN", fakes.ad_tokens["pinterest"])
    monkeypatch.setenv("REDDIT_ACCESS_TOKEN", fakes.ad_tokens["reddit"])
    path = tmp_path / "tagpipe.toml"
    path.write_text(CONFIG.format(dir=tmp_path / "data", url=fakes.url))
    rt = build_runtime(load_config(path))
    yield rt
    rt.close()


def hit(hit_id: str, value: float) -> RawHit:
    body = {"event_name": "purchase", "event_id": f"order-{hit_id}", "value": value, "currency": "EUR",
            "page_location": "https://shop.example.com/thanks?rdt_cid=1234_rdt", "user_agent": "Mozilla/5.0 (X11)",
            "client_id": "1.2", "user_data": {"email": "jane@example.com"}}  # fmt: skip
    return RawHit(hit_id=hit_id, received_at=time.time(), source="json", path="/events", body=json.dumps(body),
                  headers={"content-type": "application/json"})  # fmt: skip


def run(rt, *hits: RawHit) -> None:
    for h in hits:
        rt.bus.publish(RAW_HITS, h.model_dump_json().encode())
    for stage in (Transformer(rt), Deliverer(rt)):
        messages = rt.bus.pull(stage.subscription, 100)
        settle(rt.bus, stage.subscription, messages, stage.handle(messages))


def test_tags_name_and_gate_the_events(runtime, fakes):
    run(runtime, hit("h1", 250.0), hit("h2", 20.0))
    assert [(e["event_name"], e["event_id"]) for e in fakes.pinterest.events] == [("lead", "order-h1")]
    assert [(e["type"]["tracking_type"], e["event_id"], e["click_id"]) for e in fakes.reddit.events] == [
        ("PURCHASE", "order-h1", "1234_rdt")]
    rows = sorted((dest, outcome, reason) for _, dest, outcome, reason, _ in runtime.store.outcomes_for_hit("h2"))
    assert rows == [("pinterest", "filtered", "no_tag_fired"), ("reddit", "filtered", "no_tag_fired")]
    rows = sorted((dest, outcome) for _, dest, outcome, _, _ in runtime.store.outcomes_for_hit("h1"))
    assert rows == [("pinterest", "delivered"), ("reddit", "delivered")]


def test_the_dashboard_names_them():
    from tagpipe.monitoring import language

    assert [language.destination_label(t) for t in ("pinterest", "snapchat", "reddit", "linkedin", "microsoft_ads")] == [
        "Pinterest", "Snapchat", "Reddit", "LinkedIn", "Microsoft Ads"]
    assert language.destination_label("pin_eu", "pinterest") == "Pinterest (pin_eu)"
    assert language.IDENTIFIER_NAMES["msclkid"] == "Microsoft click ID"
