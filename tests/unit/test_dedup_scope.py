"""[delivery] dedup scope: which events get the delivered-key check, the in-flight journal and the
delivered marker. Real local queue and store, fake vendors."""

from __future__ import annotations

import pytest

from tagpipe.config import DEFAULT_DEDUP_EVENTS, load_config
from tagpipe.errors import ConfigError
from tagpipe.models import RawHit
from tagpipe.pipeline.deliver import Deliverer
from tagpipe.pipeline.stage import settle
from tagpipe.pipeline.transform import Transformer
from tagpipe.runtime import build_runtime
from tagpipe.transport.base import RAW_HITS
from tests.fakes.vendors import FakeVendors


class CountingStore:
    """Wraps the real store and counts the dedup calls deliver makes."""

    def __init__(self, store) -> None:
        self._store = store
        self.calls: dict[str, list] = {"delivered_keys": [], "mark_inflight": [], "clear_inflight": [],
                                       "delivered": []}

    def __getattr__(self, name):
        return getattr(self._store, name)

    def delivered_keys(self, destination, keys):
        keys = set(keys)
        self.calls["delivered_keys"].append(keys)
        return self._store.delivered_keys(destination, keys)

    def mark_inflight(self, destination, keys, hold=0.0):
        self.calls["mark_inflight"].append(list(keys))
        return self._store.mark_inflight(destination, keys, hold)

    def clear_inflight(self, destination, keys, unheld=()):
        self.calls["clear_inflight"].append(list(keys) + list(unheld))
        return self._store.clear_inflight(destination, keys, unheld)

    def record_outcomes(self, outcomes, delivered=()):
        self.calls["delivered"].extend(d.dedup_key for d in delivered)
        return self._store.record_outcomes(outcomes, delivered)


def make_runtime(tmp_path, fakes, delivery: str):
    path = tmp_path / "tagpipe.toml"
    path.write_text(f"""
[storage]
dir = "{tmp_path / 'data'}"

[delivery]
{delivery}

[destinations.ga4]
type = "ga4"
measurement_id = "G-TEST123"
endpoint = "{fakes.url}"

[destinations.hook]
type = "webhook"
endpoint = "{fakes.url}/webhook/events"
secret_env = "WEBHOOK_SECRET"
consent = []
""")
    rt = build_runtime(load_config(path))
    rt.store = CountingStore(rt.store)
    return rt


@pytest.fixture
def env(tmp_path, monkeypatch):
    with FakeVendors() as fakes:
        monkeypatch.setenv("GA4_API_SECRET", fakes.ga4_api_secret)
        monkeypatch.setenv("WEBHOOK_SECRET", fakes.webhook_secret)
        runtimes = []

        def build(delivery: str = ""):
            rt = make_runtime(tmp_path, fakes, delivery)
            runtimes.append(rt)
            return rt

        yield build, fakes
        for rt in runtimes:
            rt.close()


def run_stage(rt, stage, batch: int = 100) -> int:
    messages = rt.bus.pull(stage.subscription, batch)
    settle(rt.bus, stage.subscription, messages, stage.handle(messages))
    return len(messages)


def send(rt, name: str, event_id: str, client_id: str = "1.2") -> None:
    """One hit through transform and deliver (its own deliver cycle, as a hit seconds later would be)."""
    hit = RawHit(source="json", body=f'{{"event_name": "{name}", "event_id": "{event_id}", "client_id": "{client_id}"}}')
    rt.bus.publish(RAW_HITS, hit.model_dump_json().encode())
    run_stage(rt, Transformer(rt))
    run_stage(rt, Deliverer(rt))


def outcomes(rt, destination: str = "ga4") -> list[tuple[str, str]]:
    return sorted(rt.store.query(
        "SELECT outcome, reason FROM outcomes WHERE destination = ?", [destination]))


def sent(fakes, name: str) -> int:
    """Events GA4 (the destination the assertions look at) accepted under that name."""
    return sum(1 for e in fakes.ga4.events if e["name"] == name)


def test_settings_default_to_all_and_refuse_an_unknown_scope(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("[delivery]\n")
    d = load_config(path).delivery
    assert d.dedup == "all" and d.dedup_scope("anything") == "all"
    assert "purchase" in d.dedup_events and "page_view" not in d.dedup_events
    assert list(DEFAULT_DEDUP_EVENTS) == d.dedup_events
    path.write_text('[delivery]\ndedup = "conversions"\ndedup_destinations = { meta = "all" }\n')
    d = load_config(path).delivery
    assert d.dedup_scope("meta") == "all" and d.dedup_scope("ga4") == "conversions"
    path.write_text('[delivery]\ndedup = "some"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "dedup" in str(err.value)


def test_conversions_scope_sends_a_repeated_page_view_twice_and_a_repeated_purchase_once(env):
    build, fakes = env
    rt = build('dedup = "conversions"')
    for _ in range(2):
        send(rt, "page_view", "pv-1")
        send(rt, "purchase", "o-1")
    assert sent(fakes, "page_view") == 2
    assert sent(fakes, "purchase") == 1
    assert outcomes(rt) == [("delivered", "ok")] * 3 + [("filtered", "duplicate")]
    # only the purchase touched the store's dedup records
    assert rt.store.query("SELECT dedup_key FROM delivered WHERE destination = 'ga4'") == [("purchase:o-1",)]
    assert all(keys <= {"purchase:o-1"} for keys in rt.store.calls["delivered_keys"])
    assert all(set(k) <= {"purchase:o-1"} for k in rt.store.calls["mark_inflight"] + rt.store.calls["clear_inflight"])


def test_a_batch_of_browse_events_makes_no_dedup_store_call(env):
    build, fakes = env
    rt = build('dedup = "conversions"')
    send(rt, "page_view", "pv-1")
    send(rt, "view_item", "vi-1")
    assert sent(fakes, "page_view") == 1 and sent(fakes, "view_item") == 1
    calls = rt.store.calls
    assert calls["delivered_keys"] == [] and calls["mark_inflight"] == [] and calls["clear_inflight"] == []
    assert calls["delivered"] == []


def test_all_scope_filters_both_repeats(env):
    build, fakes = env
    rt = build()  # default: all
    for _ in range(2):
        send(rt, "page_view", "pv-1")
        send(rt, "purchase", "o-1")
    assert sent(fakes, "page_view") == 1 and sent(fakes, "purchase") == 1
    assert outcomes(rt) == [("delivered", "ok")] * 2 + [("filtered", "duplicate")] * 2


def test_none_scope_sends_every_repeat(env):
    build, fakes = env
    rt = build('dedup = "none"')
    for _ in range(2):
        send(rt, "purchase", "o-1")
    assert sent(fakes, "purchase") == 2
    assert outcomes(rt) == [("delivered", "ok")] * 2
    assert rt.store.calls["delivered_keys"] == [] and rt.store.calls["delivered"] == []


def test_repeats_inside_one_batch_are_collapsed_in_every_scope(env):
    build, fakes = env
    rt = build('dedup = "none"')
    for client in ("1.2", "3.4"):
        hit = RawHit(source="json", body=f'{{"event_name": "page_view", "event_id": "pv-9", "client_id": "{client}"}}')
        rt.bus.publish(RAW_HITS, hit.model_dump_json().encode())
    run_stage(rt, Transformer(rt))
    assert run_stage(rt, Deliverer(rt)) == 4  # two hits x (ga4, hook)
    assert sent(fakes, "page_view") == 1 and fakes.webhook.count == 1
    assert outcomes(rt) == [("delivered", "ok"), ("filtered", "duplicate")]


def test_a_redelivered_browse_task_is_resent_but_recorded_once(env):
    build, fakes = env
    rt = build('dedup = "conversions"')
    hit = RawHit(source="json", body='{"event_name": "page_view", "event_id": "pv-2", "client_id": "1.2"}')
    rt.bus.publish(RAW_HITS, hit.model_dump_json().encode())
    run_stage(rt, Transformer(rt))
    tasks = [m for m in rt.bus.pull("deliver", 10)]
    rt.bus.nack("deliver", [m.ack_id for m in tasks], delay=0)
    run_stage(rt, Deliverer(rt))
    (task,) = [m for m in tasks if m.attributes.get("destination") == "ga4"]
    rt.bus.publish("deliveries", task.data, {"destination": "ga4"})  # at-least-once: the same task again
    assert run_stage(rt, Deliverer(rt)) == 1
    assert sent(fakes, "page_view") == 2  # the vendor dedups on event_id
    assert outcomes(rt) == [("delivered", "ok")]  # exactly one outcome per (hit, event, destination)


def test_per_destination_scope_overrides_the_default(env):
    build, fakes = env
    rt = build('dedup = "none"\ndedup_destinations = { hook = "all" }')
    for _ in range(2):
        send(rt, "page_view", "pv-3")
    assert outcomes(rt, "ga4") == [("delivered", "ok")] * 2
    assert outcomes(rt, "hook") == [("delivered", "ok"), ("filtered", "duplicate")]


def test_conversion_names_match_vendor_names_case_insensitively_and_google_ads_is_always_guarded(env):
    build, _ = env
    rt = build('dedup = "conversions"\ndedup_events = ["purchase", "Lead"]')
    deliverer = Deliverer(rt)

    from tagpipe.destinations.ga4 import (
        Ga4MeasurementProtocol as Dest,  # only their class attributes are read
    )
    from tagpipe.destinations.google_ads import GoogleAds as Ads

    class Task:
        def __init__(self, name):
            self.event_name = name

    guarded = deliverer._guarded("ga4", Dest)
    assert guarded(Task("Purchase")) and guarded(Task("purchase")) and guarded(Task("lead"))
    assert not guarded(Task("PageView")) and not guarded(Task("CompletePayment"))
    assert deliverer._guarded("ads", Ads)(Task("page_view"))
