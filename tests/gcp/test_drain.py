"""Scheduled drain mode against the Pub/Sub emulator: raw hits -> the transform function's /drain ->
per-destination deliveries subscriptions -> the deliver function's /drain for one destination ->
the fake vendors, with outcomes in the store. The functions are the real entry points
(functions/*/main.py), served in-process by functions-framework's ASGI app.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tagpipe.config import load_config
from tagpipe.models import RawHit
from tagpipe.pipeline.drain import drain
from tagpipe.pipeline.transform import Transformer
from tagpipe.runtime import build_runtime, set_runtime
from tagpipe.transport.base import DELIVERIES, RAW_HITS, deliver_subscription, destination_topic
from tests.fakes.vendors import FakeVendors

ROOT = Path(__file__).resolve().parents[2]
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
DESTINATIONS = ("ga4", "meta")


def config(tmp_path: Path, fakes: FakeVendors) -> Path:
    path = tmp_path / "tagpipe.toml"
    path.write_text(f"""
[storage]
dir = "{tmp_path / 'data'}"

[delivery]
min_backoff = 0.05
max_backoff = 0.2

[destinations.ga4]
type = "ga4"
measurement_id = "G-TEST123"
endpoint = "{fakes.url}"

[destinations.meta]
type = "meta"
pixel_id = "123456789012345"
endpoint = "{fakes.url}"
access_token_env = "META_ACCESS_TOKEN"
""")
    return path


@pytest.fixture
def stack(pubsub_emulator, project, tmp_path, monkeypatch):
    """Runtime on the emulator (SQLite store), topology as Terraform creates it, both function apps."""
    import functions_framework.aio
    from starlette.testclient import TestClient

    with FakeVendors() as fakes:
        for key, value in {"TAGPIPE_TRANSPORT": "pubsub", "TAGPIPE_STORE": "sqlite", "TAGPIPE_GCP_PROJECT": project,
                           "TAGPIPE_TOPIC_PREFIX": "tagpipe", "GA4_API_SECRET": fakes.ga4_api_secret,
                           "META_ACCESS_TOKEN": fakes.meta_token, "TAGPIPE_DRAIN_SECONDS": "20"}.items():
            monkeypatch.setenv(key, value)
        rt = build_runtime(load_config(config(tmp_path, fakes)))
        rt.bus.ensure_topology(destinations=DESTINATIONS)
        set_runtime(rt)
        apps = {name: TestClient(functions_framework.aio.create_asgi_app(name, str(ROOT / "functions" / name / "main.py")))
                for name in ("transform", "deliver")}
        try:
            yield rt, fakes, apps
        finally:
            set_runtime(None)
            rt.close()


def publish_hits(rt, n: int, prefix: str = "o") -> list[str]:
    ids = [f"{prefix}-{i}" for i in range(n)]
    for i, event_id in enumerate(ids):
        body = {"event_name": "purchase", "event_id": event_id, "client_id": "555.666", "value": i + 1, "currency": "USD",
                "page_location": "https://shop.example/thanks"}
        hit = RawHit(source="json", body=json.dumps(body), headers={"user-agent": UA})
        rt.bus.publish(RAW_HITS, hit.model_dump_json().encode())
    return ids


def post_drain(app, body: dict | None = None) -> dict:
    r = app.post("/drain", json=body if body is not None else {})
    assert r.status_code == 200, r.text
    return r.json()


def drain_until(app, body: dict, done, timeout: float = 20.0) -> list[dict]:
    """Drain again until `done()` (the emulator makes pulled-then-nacked messages visible asynchronously)."""
    runs, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs.append(post_drain(app, body))
        if done():
            return runs
    raise AssertionError(f"not done after {len(runs)} drains: {runs[-3:]}")


def outcomes(rt, destination: str) -> list[tuple]:
    return rt.store.query("SELECT event_uid, outcome FROM outcomes WHERE destination = ?", (destination,))


def test_drains_raw_hits_then_one_destination(stack):
    rt, fakes, apps = stack
    ids = publish_hits(rt, 12)

    drain_until(apps["transform"], {}, lambda: len(rt.store.query("SELECT 1 FROM events")) >= 12)
    # the transform drain emptied its subscription; each event has one task per destination
    again = post_drain(apps["transform"])
    assert again["pulled"] == 0 and again["stopped"] == "empty"

    runs = drain_until(apps["deliver"], {"destination": "ga4"}, lambda: fakes.ga4.count >= 12)
    assert fakes.ga4.count == 12
    # each event once (GA4 events carry no event id here: the value tells them apart)
    assert sorted(e["params"]["value"] for e in fakes.ga4.events) == [float(i + 1) for i in range(12)]
    assert sum(r["acked"] for r in runs) == 12 and sum(r["nacked"] for r in runs) == 0
    # only ga4 was drained: Meta got nothing yet, its tasks wait on their own subscription
    assert fakes.meta.count == 0
    delivered = outcomes(rt, "ga4")
    assert len(delivered) == 12 and {o for _, o in delivered} == {"delivered"}
    assert outcomes(rt, "meta") == []

    drain_until(apps["deliver"], {"destination": "meta"}, lambda: fakes.meta.count >= 12)
    assert sorted(fakes.meta.event_ids()) == sorted(ids) and fakes.meta.duplicates() == {}
    assert len(outcomes(rt, "meta")) == 12
    # nothing left anywhere, and nothing was sent twice
    for dest in DESTINATIONS:
        assert post_drain(apps["deliver"], {"destination": dest})["pulled"] == 0
    assert fakes.ga4.count == 12 and fakes.meta.count == 12


def test_a_nacked_batch_is_redelivered_on_a_later_drain(stack):
    rt, fakes, apps = stack
    ids = publish_hits(rt, 5, prefix="n")
    drain_until(apps["transform"], {}, lambda: len(rt.store.query("SELECT 1 FROM events")) >= 5)
    fakes.meta.fail_next(1, status=500)  # a transient vendor error: the batch is nacked with a delay
    runs = drain_until(apps["deliver"], {"destination": "meta"}, lambda: fakes.meta.count >= 5)
    assert runs[0]["nacked"] == 5 and runs[0]["acked"] == 0
    assert sum(r["acked"] for r in runs) == 5
    assert sorted(fakes.meta.event_ids()) == sorted(ids) and fakes.meta.duplicates() == {}
    assert {o for _, o in outcomes(rt, "meta")} == {"delivered"}


def test_the_time_budget_stops_a_drain_and_the_next_one_continues(stack):
    rt, _, _ = stack
    for i in range(6):
        rt.bus.publish(RAW_HITS, RawHit(source="json", body=json.dumps(
            {"event_name": "page_view", "client_id": f"1.{i}"}), headers={"user-agent": UA}).model_dump_json().encode())
    ticks = iter(range(1000))  # every clock reading is one second later: no real waiting

    def clock() -> float:
        return float(next(ticks))

    stage = Transformer(rt)
    first = drain(rt.bus, stage, budget=3, batch=2, clock=clock)
    assert first.stopped == "budget"
    assert 0 < first.pulled < 6
    rest = []
    deadline = time.monotonic() + 20
    while first.pulled + sum(r.pulled for r in rest) < 6 and time.monotonic() < deadline:
        rest.append(drain(rt.bus, stage, budget=60, batch=2))
    assert first.pulled + sum(r.pulled for r in rest) == 6
    assert first.acked + sum(r.acked for r in rest) == 6


def test_tasks_reach_only_their_destinations_drain(stack):
    """Each destination's tasks go to its own topic: the GA4 drain never sees Meta's."""
    rt, fakes, apps = stack
    rt.bus.publish(DELIVERIES, b'{"destination": "meta"}')
    pulled, deadline = 0, time.monotonic() + 20
    while pulled == 0 and time.monotonic() < deadline:  # emulator delivery is asynchronous
        pulled += post_drain(apps["deliver"], {"destination": "meta"})["pulled"]
    assert pulled == 1
    assert post_drain(apps["deliver"], {"destination": "ga4"})["pulled"] == 0  # a filtered shared topic gave GA4 a copy
    assert fakes.ga4.count == 0


def test_a_foreign_task_on_a_destination_topic_is_acked_unhandled(stack):
    """Defence in depth: a task for Meta published straight onto GA4's topic is not sent to GA4."""
    rt, fakes, apps = stack
    rt.bus.publisher().publish(rt.bus.topic_path(destination_topic("ga4")), b'{"destination": "meta"}',
                               destination="meta").result(timeout=10)
    runs = drain_until(apps["deliver"], {"destination": "ga4"}, lambda: True)
    got = runs[0]
    if got["pulled"] == 0:  # emulator delivery is asynchronous
        got = drain_until(apps["deliver"], {"destination": "ga4"}, lambda: True)[0]
    assert got["foreign"] == got["pulled"] == 1 and got["acked"] == 0
    assert fakes.ga4.count == 0
    assert rt.bus.subscription_path(deliver_subscription("ga4")).endswith("tagpipe-deliver-ga4")


@pytest.mark.parametrize("body, status, reason", [
    (b"not json", 400, "not JSON"),
    (b"[1]", 400, "JSON object"),
    (b'{"destination": "tiktok"}', 400, "not configured"),
    (b'{"destination": 5}', 400, "not configured"),
    (b'{"subscription": "x"}', 400, "unknown field"),
])
def test_bad_drain_requests_get_a_400_reason(stack, body, status, reason):
    _, _, apps = stack
    r = apps["deliver"].post("/drain", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert r.json()["error"] == "invalid_drain_request" and reason in r.json()["reason"]
    t = apps["transform"].post("/drain", json={"destination": "ga4"})
    assert t.status_code == 400 and "takes no destination" in t.json()["reason"]


def test_push_envelopes_still_work_on_the_same_entry_point(stack):
    from tagpipe.transport.push import push_envelope

    rt, _, apps = stack
    hit = RawHit(source="json", body=json.dumps({"event_name": "page_view", "client_id": "1.2"}),
                 headers={"user-agent": UA})
    r = apps["transform"].post("/", content=push_envelope(hit.model_dump_json().encode()),
                               headers={"content-type": "application/json"})
    assert r.status_code == 204
    assert apps["transform"].post("/", content=b'{"destination": "ga4"}',
                                  headers={"content-type": "application/json"}).status_code == 400
    assert apps["transform"].get("/drain").status_code == 405


def test_each_destination_has_a_topic_and_subscription_of_its_own(stack):
    """What ensure_topology made is what Terraform creates: deliveries-<id> -> deliver-<id>, no filter,
    no shared deliveries topic (a filtered subscription is billed for the messages it drops)."""
    from google.api_core import exceptions as gexc

    rt, _, _ = stack
    subscriber = rt.bus.subscriber()
    for dest in DESTINATIONS:
        sub = subscriber.get_subscription(request={"subscription": rt.bus.subscription_path(f"deliver-{dest}")})
        assert sub.topic == rt.bus.topic_path(destination_topic(dest)) and sub.filter == ""
        assert sub.dead_letter_policy.dead_letter_topic == rt.bus.topic_path("dead-letter")
    with pytest.raises(gexc.NotFound):  # no `deliver` next to them
        subscriber.get_subscription(request={"subscription": rt.bus.subscription_path("deliver")})
    with pytest.raises(gexc.NotFound):
        rt.bus.publisher().get_topic(request={"topic": rt.bus.topic_path(DELIVERIES)})


def test_dead_letter_source_of_a_destination_subscription_is_the_deliver_stage():
    from tagpipe.transport.base import TOPOLOGY, per_destination, stage_subscription
    from tagpipe.transport.push import parse_push_envelope, push_envelope

    assert stage_subscription("deliver-ga4") == "deliver" and stage_subscription("transform") == "transform"
    topo = per_destination(TOPOLOGY, ["ga4", "meta"])
    assert set(topo) == {"transform", "deliver-ga4", "deliver-meta", "dead-letter-archive"}
    assert topo["deliver-ga4"].max_delivery_attempts == TOPOLOGY["deliver"].max_delivery_attempts
    m = parse_push_envelope(push_envelope(b"x", {"CloudPubSubDeadLetterSourceSubscription": "tagpipe-deliver-meta"}),
                            prefix="tagpipe")
    assert m.attributes["CloudPubSubDeadLetterSourceSubscription"] == "deliver"


def test_an_unreachable_subscription_answers_503_for_the_scheduler(stack):
    rt, fakes, apps = stack
    rt.bus.subscriber().delete_subscription(request={"subscription": rt.bus.subscription_path("deliver-ga4")})
    r = apps["deliver"].post("/drain", json={"destination": "ga4"})
    assert r.status_code == 503
    assert r.json()["stopped"] == "error" and r.json()["ok"] is False and r.json()["pulled"] == 0
    assert fakes.ga4.count == 0


class Recorder:
    """A stage that records its batches; nacks (with a delay) the messages whose body says so, once."""

    subscription = "transform"

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []
        self.seen: set[str] = set()

    def handle(self, messages):
        from tagpipe.pipeline.stage import ACK, nack

        self.batches.append([m.data for m in messages])
        out = {}
        for m in messages:
            first = m.message_id not in self.seen
            self.seen.add(m.message_id)
            out[m.ack_id] = nack(delay=30) if m.data.startswith(b"nack") and first else ACK
        return out


def test_drain_fills_batches_and_leaves_delayed_nacks_for_a_later_drain(tmp_path):
    """The same loop on the local bus (no emulator): batches are filled to `batch`, a nack with a
    delay is not pulled again by the same drain, and the drain stops when the subscription is empty."""
    from tagpipe.transport.base import TOPOLOGY
    from tagpipe.transport.local import LocalBus

    bus = LocalBus(tmp_path, TOPOLOGY)
    try:
        bus.publish_many(RAW_HITS, [(f"ok-{i}".encode(), None) for i in range(23)] + [(b"nack-1", None)])
        stage = Recorder()
        result = drain(bus, stage, batch=10, wait=0)
        assert [len(b) for b in stage.batches] == [10, 10, 4]
        assert (result.pulled, result.acked, result.nacked, result.batches) == (24, 23, 1, 3)
        assert result.stopped == "empty"
        assert drain(bus, stage, batch=10, wait=0).pulled == 0  # the nack's 30 s have not passed
    finally:
        bus.close()
