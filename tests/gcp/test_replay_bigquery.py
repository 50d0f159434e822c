"""`tagpipe replay` and `tagpipe backfill` against the GCP store: rows in BigQuery (bqemulator) ->
the command -> delivery tasks on the deliveries topic (Pub/Sub emulator) -> the deliver stage with
its Firestore dedup (Firestore emulator) -> outcomes back in BigQuery; a second run republishes
nothing."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tagpipe.config import load_config
from tagpipe.models import DeliveryTask, Outcome, OutcomeKind
from tagpipe.ops.cli import main
from tagpipe.pipeline.deliver import Deliverer
from tagpipe.pipeline.stage import ACK
from tagpipe.runtime import Runtime
from tagpipe.storage.bigquery import BigQueryStore, FirestoreIndex, iso_timestamp
from tagpipe.transport.base import deliver_subscription
from tagpipe.transport.pubsub import PubSubBus
from tests.gcp.conftest import FAST, pull_until
from tests.gcp.test_bigquery_store import RELAYS, _bq_client, relay, sample_event

BQ_PROJECT = "tagpipe-test"  # the project bqemulator serves
UA = "Mozilla/5.0 Chrome/131.0"  # an event without one is filtered as a bot
CONFIG = '[destinations.dry_run]\ntype = "log"\n\n[destinations.other]\ntype = "log"\n'
DESTINATIONS = ["dry_run", "other"]


class Env:
    """BigQuery (tables from the schema files), Firestore and Pub/Sub, as `tagpipe` sees them."""

    def __init__(self, tmp_path, monkeypatch, bqemulator, firestore_emulator, project: str) -> None:
        self.dataset = f"ds_{project.replace('-', '_')}"
        self.prefix = f"tp{project[-6:]}"
        self.config_path = tmp_path / "tagpipe.toml"
        self.config_path.write_text(f'[storage]\ndir = "{tmp_path / "data"}"\n\n' + CONFIG)
        for key, value in {
            "TAGPIPE_STORE": "bigquery", "TAGPIPE_TRANSPORT": "pubsub", "TAGPIPE_GCP_PROJECT": BQ_PROJECT,
            "TAGPIPE_BQ_DATASET": self.dataset, "TAGPIPE_TOPIC_PREFIX": self.prefix,
            "BIGQUERY_EMULATOR_HOST": bqemulator.host, "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
        }.items():
            monkeypatch.setenv(key, value)
        self.bus = PubSubBus(BQ_PROJECT, self.prefix, {**FAST, **RELAYS}, publish_timeout=5.0)
        self.bus.ensure_topology(destinations=DESTINATIONS)  # as Terraform: a topic per destination
        self.client = _bq_client(bqemulator)
        self.store = BigQueryStore(BQ_PROJECT, self.dataset, self.prefix, bus=self.bus, bigquery_client=self.client,
                                   index=FirestoreIndex(BQ_PROJECT, f"{self.prefix}-keys"))
        self.store.create_tables()
        self.rt = Runtime(load_config(self.config_path), self.bus, self.store)

    def close(self) -> None:
        self.bus.close()
        self.store.close()

    def settle(self, expected: int) -> None:
        """Run the BigQuery subscriptions' part: records topics -> tables, until `expected` rows moved."""
        moved, deadline = 0, time.monotonic() + 20
        while moved < expected and time.monotonic() < deadline:
            moved += relay(self.bus, self.client, self.dataset)
        assert moved == expected

    def dead_letter(self, task: DeliveryTask, at: float, source: str = "deliver") -> None:
        """A row as the archive subscription writes it (write_metadata)."""
        attributes = {"destination": task.destination, "CloudPubSubDeadLetterSourceSubscription": source,
                      "CloudPubSubDeadLetterSourceDeliveryCount": "5", "reason": "meta:190"}
        row = {"subscription_name": f"{self.prefix}-dead-letter-archive", "message_id": f"m-{task.event_uid}-{at}",
               "publish_time": iso_timestamp(at), "data": base64.b64encode(task.model_dump_json().encode()).decode(),
               "attributes": json.dumps(attributes)}
        assert self.client.insert_rows_json(f"{BQ_PROJECT}.{self.dataset}.dead_letters", [row]) == []

    def rows(self, sql: str) -> list[tuple]:
        sql = sql.replace("{ds}", f"`{BQ_PROJECT}.{self.dataset}`")
        return [tuple(r.values()) for r in self.client.query(sql).result()]

    def cli(self, capsys, *argv: str) -> tuple[str, str]:
        assert main(["--config", str(self.config_path), *argv]) == 0
        captured = capsys.readouterr()
        return captured.out, captured.err

    def deliver_all(self, expected: int, destination: str = "dry_run") -> list[DeliveryTask]:
        """The deliver stage on what the command published to one destination's topic (pull mode; push
        runs the same handler)."""
        subscription = deliver_subscription(destination)
        messages = pull_until(self.bus, subscription, expected)
        assert len(messages) == expected
        assert all(m.attributes["destination"] == json.loads(m.data)["destination"] == destination for m in messages)
        decisions = Deliverer(self.rt).handle(messages)
        assert set(decisions.values()) == {ACK}
        self.bus.ack(subscription, [m.ack_id for m in messages])
        return [DeliveryTask.model_validate_json(m.data) for m in messages]

    def nothing_queued(self) -> None:
        for destination in DESTINATIONS:
            assert self.bus.pull(deliver_subscription(destination), 100, wait=0.5) == []


@pytest.fixture
def env(tmp_path, monkeypatch, pubsub_emulator, firestore_emulator, bqemulator, project):
    e = Env(tmp_path, monkeypatch, bqemulator, firestore_emulator, project)
    yield e
    e.close()


def task(uid: str, destination: str = "dry_run", event_id: str | None = None) -> DeliveryTask:
    return DeliveryTask(event_uid=uid, hit_id=uid.split(":")[0], event_id=event_id or f"e-{uid}",
                        event_name="Purchase", event_time=time.time() - 600, destination=destination,
                        payload={"event_name": "Purchase", "event_id": event_id or f"e-{uid}"})


def dead_lettered(t: DeliveryTask) -> Outcome:
    return Outcome(hit_id=t.hit_id, event_uid=t.event_uid, destination=t.destination,
                   outcome=OutcomeKind.DEAD_LETTERED, reason="meta:190", event_name=t.event_name)


def test_replay_republishes_dead_letters_once(env, capsys):
    now = time.time()
    fresh = [task(f"h{i}:0") for i in range(3)]
    other = task("h9:0", destination="other")
    old = task("h8:0")
    done = task("h7:0")
    for t in [*fresh[:2], other, done]:
        env.dead_letter(t, now - 600)
    # dead-lettered by Pub/Sub itself, from its destination's subscription
    env.dead_letter(fresh[2], now - 600, source=f"{env.prefix}-deliver-dry_run")
    env.dead_letter(fresh[0], now - 300)  # the at-least-once subscription wrote it twice
    env.dead_letter(old, now - 3 * 86400)  # before --since
    env.dead_letter(task("h6:0"), now - 600, source="transform")  # not a delivery task's dead letter
    # what deliver recorded when it dead-lettered them; `done` was delivered by an earlier replay
    assert env.store.record_outcomes([dead_lettered(t) for t in [*fresh, other, old]]) == [True] * 5
    env.store.record_outcomes([Outcome(hit_id=done.hit_id, event_uid=done.event_uid, destination="dry_run",
                                       outcome=OutcomeKind.DELIVERED, event_name="Purchase")])
    env.settle(6)

    out, err = env.cli(capsys, "replay", "--destination", "dry_run", "--since", "1d")
    assert "dead letters selected 3, queued 3, unreadable 0" in out
    assert "replay: dead_letters: will scan" in err and "3/3" in err  # dry run first, then the progress bar
    sent = env.deliver_all(3)
    assert sorted(t.event_uid for t in sent) == ["h0:0", "h1:0", "h2:0"]
    env.settle(3)  # the new attempts' outcomes were recorded: the dead_lettered markers gave way
    assert env.rows("SELECT event_uid, outcome FROM {ds}.outcomes WHERE outcome = 'delivered' AND destination = "
                    "'dry_run' ORDER BY event_uid") == [("h0:0", "delivered"), ("h1:0", "delivered"),
                                                        ("h2:0", "delivered"), ("h7:0", "delivered")]

    out, _ = env.cli(capsys, "replay", "--destination", "dry_run", "--since", "1d")
    assert "dead letters selected 0, queued 0" in out
    env.nothing_queued()

    out, _ = env.cli(capsys, "replay", "--since", "1d")  # every destination: only `other` is left
    assert "dead letters selected 1, queued 1" in out
    assert [t.event_uid for t in env.deliver_all(1, "other")] == ["h9:0"]


def test_replay_requeued_before_deliver_ran_is_sent_once(env, capsys):
    """Two replays before deliver runs: both publish (outcomes are not there yet); deliver's
    Firestore dedup sends the event once and the second copy is acked as already done."""
    t = task("h1:0")
    env.dead_letter(t, time.time() - 60)
    env.store.record_outcomes([dead_lettered(t)])
    env.settle(1)
    for _ in range(2):
        out, _ = env.cli(capsys, "replay", "--since", "1h")
        assert "queued 1" in out
    messages = pull_until(env.bus, "deliver-dry_run", 2)
    assert len(messages) == 2
    for m in messages:  # one at a time, as two push requests would: the second finds the Firestore key
        assert Deliverer(env.rt).handle([m]) == {m.ack_id: ACK}
    env.bus.ack("deliver-dry_run", [m.ack_id for m in messages])
    env.settle(1)  # one outcome, not two
    assert env.rows("SELECT outcome FROM {ds}.outcomes WHERE event_uid = 'h1:0' AND outcome = 'delivered'") == [
        ("delivered",)]
    assert env.store.delivered_keys("dry_run", ["Purchase:e-h1:0"]) == {"Purchase:e-h1:0": "h1:0"}


def test_backfill_sends_stored_events_once(env, capsys):
    now = time.time()
    events = []
    for i in range(4):
        e = sample_event(f"b{i}:0")
        events.append(e.model_copy(update={"hit_id": f"b{i}", "event_id": f"order-{i}", "timestamp": now - 3600 + i,
                                           "client": e.client.model_copy(update={"user_agent": UA})}))
    outside = sample_event("z9:0").model_copy(update={"hit_id": "z9", "event_id": "order-z",
                                                      "timestamp": now - 5 * 86400})
    env.store.record_events([*events, outside])
    env.store.record_events([events[1]])  # a duplicate row: selected once
    # events[0] already reached dry_run before the backfill
    env.store.record_outcomes([Outcome(hit_id="b0", event_uid="b0:0", destination="dry_run",
                                       outcome=OutcomeKind.DELIVERED, event_name="purchase")])
    env.settle(7)

    out, err = env.cli(capsys, "backfill", "dry_run", "--since", "2h")
    assert "stored events 3, queued for dry_run 3, not routed 0" in out
    assert "backfill: events: will scan" in err
    sent = env.deliver_all(3)
    assert sorted(t.event_id for t in sent) == ["order-1", "order-2", "order-3"]
    assert {t.destination for t in sent} == {"dry_run"}
    env.settle(3)

    out, _ = env.cli(capsys, "backfill", "dry_run", "--since", "2h")
    assert "stored events 0, queued for dry_run 0" in out
    env.nothing_queued()


def test_backfill_refuses_an_unknown_destination(env, capsys):
    with pytest.raises(SystemExit, match="no enabled destination 'nope'"):
        main(["--config", str(env.config_path), "backfill", "nope", "--since", "1h"])


def test_a_scan_above_the_limit_needs_yes(env, capsys, monkeypatch):
    """bqemulator's dry run reports 0 bytes; BigQuery's reports what the partitions hold."""
    from tagpipe.storage.bigquery_read import BigQueryReplaySource

    t = task("h1:0")
    env.dead_letter(t, time.time() - 60)
    monkeypatch.setattr(BigQueryReplaySource, "estimate", lambda self, sql, params: 3 * 2**30)
    with pytest.raises(SystemExit, match="not run"):
        main(["--config", str(env.config_path), "replay", "--since", "1h", "--max-scan-gb", "2"])
    err = capsys.readouterr().err
    assert "will scan 3.00 GiB" in err and "pass --yes" in err
    env.nothing_queued()
    out, _ = env.cli(capsys, "replay", "--since", "1h", "--max-scan-gb", "4")
    assert "queued 1" in out
    out, _ = env.cli(capsys, "replay", "--since", "1h", "--max-scan-gb", "2", "--yes")
    assert "queued 1" in out
    assert len(pull_until(env.bus, "deliver-dry_run", 2)) == 2
