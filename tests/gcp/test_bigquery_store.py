"""BigQueryStore: schemas vs models, the Firestore index on its emulator, and the whole write path
(Pub/Sub emulator -> records topics -> rows in bqemulator tables built from the same schemas)."""

from __future__ import annotations

import base64
import json
import time
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from tagpipe.errors import StoreUnavailable
from tagpipe.models import (
    ClientContext,
    Ecommerce,
    Event,
    FailedEvent,
    Outcome,
    OutcomeKind,
    RawHit,
    UserData,
)
from tagpipe.storage.base import DeliveredKey
from tagpipe.storage.bigquery import (
    COLUMNS,
    MODELS,
    BigQueryStore,
    FirestoreIndex,
    doc_id,
    record_topic,
    row,
    schema,
    schema_dir,
    tables,
)
from tagpipe.transport.base import Subscription
from tests.gcp.conftest import FAST

ROOT = Path(__file__).resolve().parents[2]
VIEWS = ROOT / "terraform" / "modules" / "bigquery" / "views"
NOW = 1_790_000_000.25


def sample_hit() -> RawHit:
    return RawHit(hit_id="h1", received_at=NOW, source="gtag", path="/g/collect", body="en=purchase",
                  headers={"user-agent": "UA"}, client_ip="203.0.113.9")


def sample_event(uid: str = "h1:0") -> Event:
    return Event(event_uid=uid, hit_id="h1", event_id="e-1", name="purchase", timestamp=NOW, source="gtag",
                 client=ClientContext(client_id="c.1"), user_data=UserData(email="a" * 64),
                 ecommerce=Ecommerce(value=12.5, currency="EUR", transaction_id="T-1"))


def outcome(dest: str, kind=OutcomeKind.DELIVERED, uid: str = "h1:0", hit: str = "h1") -> Outcome:
    return Outcome(hit_id=hit, event_uid=uid, destination=dest, outcome=kind, reason="ok",
                   identifiers=["em", "fbp"], event_name="Purchase", at=NOW)


def failure() -> FailedEvent:
    return FailedEvent(stage="deliver", hit_id="h1", event_uid="h1:0", destination="meta",
                       error_code="meta:190", message="token expired", payload="{}", at=NOW)


# --------------------------------------------------------------------------- schemas vs models


def test_every_table_has_one_schema_file_and_one_spec():
    files = {p.stem for p in schema_dir().glob("*.json")}
    assert files == set(tables())
    for name, spec in tables().items():
        columns = {f["name"]: f for f in schema(name)}
        assert columns[spec["partition_field"]]["type"] == "TIMESTAMP", name
        assert set(spec["clustering"]) <= set(columns), name
        assert len(spec["clustering"]) <= 4  # BigQuery's limit
        for f in schema(name):
            assert f["description"], f"{name}.{f['name']} has no description"


def _field_type(model: type[BaseModel], path: str):
    annotation = None
    for part in path.split("."):
        assert isinstance(model, type) and issubclass(model, BaseModel), path
        assert part in model.model_fields, f"{model.__name__} has no field {part!r} ({path})"
        annotation = model.model_fields[part].annotation
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        model = inner[0] if inner and isinstance(annotation, types.UnionType) else annotation
    return annotation


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_columns_match_schema_and_model(table):
    model = MODELS[table]
    names = [f["name"] for f in schema(table)]
    assert list(COLUMNS[table]) == names  # every column mapped, in the schema's order
    for field in schema(table):
        path = COLUMNS[table][field["name"]]
        if path == "@json":
            assert field["type"] == "STRING"
            continue
        annotation = _field_type(model, path)
        nullable = type(None) in typing.get_args(annotation)
        if field["mode"] == "REQUIRED":
            assert not nullable, f"{table}.{field['name']} is REQUIRED but {path} may be None"
        if field["mode"] == "REPEATED":
            assert typing.get_origin(annotation) is list


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_no_model_field_is_dropped(table):
    """Either the whole model goes into `doc`, or every field has a column."""
    mapped = {p.split(".")[0] for p in COLUMNS[table].values()}
    if "@json" in mapped:
        return
    assert set(MODELS[table].model_fields) <= mapped, set(MODELS[table].model_fields) - mapped


def test_rows_take_their_shape_from_the_schemas():
    hit = row("raw_hits", sample_hit())
    assert hit["received_at"] == "2026-09-21T14:13:20.250000Z"
    assert json.loads(hit["doc"])["client_ip"] == "203.0.113.9"
    ev = row("events", sample_event())
    assert (ev["event_time"], ev["client_id"], ev["value"], ev["currency"]) == (
        "2026-09-21T14:13:20.250000Z", "c.1", 12.5, "EUR")
    assert ev["user_id"] is None
    out = row("outcomes", outcome("meta"))
    assert out["outcome"] == "delivered" and out["identifiers"] == ["em", "fbp"]
    bad = row("failed_events", failure())
    assert bad["schema"] == "tagpipe/failed_event/1-0-0"
    assert set(bad) == {f["name"] for f in schema("failed_events")}
    with pytest.raises(ValueError, match="traces.debug_token is REQUIRED"):
        row("traces", hit_id="h", stage="s", recorded_at=NOW, data="{}")


def test_record_topics():
    assert record_topic("failed_events") == "records-failed-events"
    assert tables()["failed_events"]["topic"] == "records-failed-events"
    assert tables()["dead_letters"]["topic"] is None  # written by Pub/Sub itself


def test_doc_ids_are_safe_and_stable():
    assert doc_id("meta", "Purchase:a/b") == doc_id("meta", "Purchase:a/b")
    assert doc_id("meta", "x") != doc_id("ga4", "x")
    assert "/" not in doc_id("a/b", "c/d") and len(doc_id("x")) == 64


# --------------------------------------------------------------------------- Firestore index


class RecordingBus:
    """Stands in for PubSubBus where only the published rows matter."""

    def __init__(self, fail: bool = False) -> None:
        self.published: dict[str, list[dict]] = {}
        self.fail = fail

    def publish_many(self, topic, items):
        if self.fail:
            raise StoreUnavailable("pubsub down")
        self.published.setdefault(topic, []).extend(json.loads(d) for d, _ in items)
        return [str(i) for i in range(len(items))]


@pytest.fixture
def keyed_store(firestore_emulator, project):
    index = FirestoreIndex(project, "tagpipe-keys", emulator_host=firestore_emulator.host)
    store = BigQueryStore(project, "tagpipe", bus=RecordingBus(), index=index)
    yield store
    store.close()


def test_outcomes_are_recorded_at_most_once(keyed_store):
    first = keyed_store.record_outcomes([outcome("meta"), outcome("ga4"), outcome("meta")])
    assert first == [True, True, False]  # the repeat within the call too
    again = keyed_store.record_outcomes([outcome("meta"), outcome("tiktok")])
    assert again == [False, True]
    rows = keyed_store.bus.published["records-outcomes"]
    assert sorted(r["destination"] for r in rows) == ["ga4", "meta", "tiktok"]  # only the new ones


def test_delivered_keys(keyed_store):
    keys = ["Purchase:e-1", "Purchase:e/2", "Lead:é-3"]
    assert keyed_store.delivered_keys("meta", keys) == {}
    keyed_store.record_outcomes(
        [outcome("meta")], [DeliveredKey("meta", k, f"h1:{i}") for i, k in enumerate(keys[:2])]
    )
    assert keyed_store.delivered_keys("meta", keys + ["Purchase:e-1"]) == {"Purchase:e-1": "h1:0",
                                                                          "Purchase:e/2": "h1:1"}
    assert keyed_store.delivered_keys("ga4", keys) == {}  # per destination
    # a second delivery of the same key keeps the first event_uid (like INSERT OR IGNORE)
    keyed_store.record_outcomes([], [DeliveredKey("meta", "Purchase:e-1", "h9:9")])
    assert keyed_store.delivered_keys("meta", ["Purchase:e-1"]) == {"Purchase:e-1": "h1:0"}


def test_many_keys_span_several_requests(keyed_store):
    delivered = [DeliveredKey("meta", f"Purchase:{i}", f"h:{i}") for i in range(620)]
    keyed_store.record_outcomes([], delivered)
    found = keyed_store.delivered_keys("meta", [d.dedup_key for d in delivered] + ["nope"])
    assert len(found) == 620 and found["Purchase:619"] == "h:619"


def test_markers_expire_through_ttl_field(keyed_store, firestore_emulator):
    keyed_store.record_outcomes([], [DeliveredKey("meta", "k", "u")])
    doc = keyed_store.index.get("delivered", [doc_id("meta", "k")])[doc_id("meta", "k")]
    expire = doc["expire_at"]
    assert expire.startswith(time.strftime("%Y", time.gmtime(time.time() + 35 * 86400)))


def test_failed_publish_rolls_the_outcome_markers_back(keyed_store):
    keyed_store._bus = RecordingBus(fail=True)
    with pytest.raises(StoreUnavailable):
        keyed_store.record_outcomes([outcome("meta")])
    keyed_store._bus = RecordingBus()
    assert keyed_store.record_outcomes([outcome("meta")]) == [True]  # the retry records it


def test_firestore_down_is_store_unavailable(project):
    from tests.gcp.conftest import free_port

    index = FirestoreIndex(project, "db", emulator_host=f"127.0.0.1:{free_port()}", timeout=0.5)
    with pytest.raises(StoreUnavailable):
        index.get("delivered", ["x"])


# --------------------------------------------------------------------------- the whole path


def _bq_client(server):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(project="tagpipe-test", credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=f"http://{server.host}"))


RELAYS = {f"relay-{t}": Subscription(f"relay-{t}", record_topic(t), dead_letter_topic=None)
          for t, spec in tables().items() if spec["topic"]}


def relay(bus, client, dataset: str) -> int:
    """What the BigQuery subscriptions do in production: records topic -> table, as JSON rows."""
    from google.api_core.retry import Retry

    moved = 0
    for name in RELAYS:
        table = name.removeprefix("relay-")
        messages = bus.pull(name, 1000, wait=0.5)
        if messages:
            rows = [json.loads(m.data) for m in messages]
            errors = client.insert_rows_json(f"tagpipe-test.{dataset}.{table}", rows, retry=Retry(timeout=10))
            assert errors == [], errors
            bus.ack(name, [m.ack_id for m in messages])
            moved += len(rows)
    # the archive subscription on the dead-letter topic (write_metadata=true)
    dead = bus.pull("dead-letter-archive", 1000, wait=0.5)
    if dead:
        rows = [{"subscription_name": "tagpipe-dead-letter-archive", "message_id": m.message_id,
                 "publish_time": m.publish_time, "data": base64.b64encode(m.data).decode(),
                 "attributes": json.dumps(dict(m.attributes))} for m in dead]
        assert client.insert_rows_json(f"tagpipe-test.{dataset}.dead_letters", rows, retry=Retry(timeout=10)) == []
        bus.ack("dead-letter-archive", [m.ack_id for m in dead])
        moved += len(rows)
    return moved


def test_records_reach_bigquery_tables_built_from_the_schemas(
    pubsub_emulator, firestore_emulator, bqemulator, project
):
    from tagpipe.transport.pubsub import PubSubBus

    bus = PubSubBus(project, "tagpipe", {**FAST, **RELAYS})
    bus.ensure_topology()
    client = _bq_client(bqemulator)
    dataset = f"ds_{project.replace('-', '_')}"
    store = BigQueryStore("tagpipe-test", dataset, bus=bus, bigquery_client=client,
                          index=FirestoreIndex(project, "tagpipe-keys", emulator_host=firestore_emulator.host))
    store.create_tables({"raw_hits": 30, "traces": 7})
    table = client.get_table(f"tagpipe-test.{dataset}.events")
    assert table.time_partitioning.field == "event_time"
    assert table.clustering_fields == ["name"]

    store.record_hits([sample_hit()])
    store.record_events([sample_event("h1:0"), sample_event("h1:1")])
    assert store.record_outcomes(
        [outcome("meta"), outcome("ga4", OutcomeKind.FILTERED), outcome("meta", uid="h1:1")],
        [DeliveredKey("meta", "Purchase:e-1", "h1:0")],
    ) == [True, True, True]
    store.record_failures([failure()])
    store.record_trace("dbg-1", "h1", "transform", {"events": 2})
    bus.publish("dead-letter", b'{"poison":1}', {"CloudPubSubDeadLetterSourceSubscription": "tagpipe-deliver"})

    moved = 0
    deadline = time.monotonic() + 20
    while moved < 9 and time.monotonic() < deadline:
        moved += relay(bus, client, dataset)
    assert moved == 9

    # a duplicate row, as an at-least-once BigQuery subscription can write: the views drop it
    client.insert_rows_json(f"tagpipe-test.{dataset}.outcomes", [row("outcomes", outcome("meta"))])
    for view in ("outcomes_unique", "events_unique"):
        sql = (VIEWS / f"{view}.sql").read_text().replace("${dataset}", f"tagpipe-test.{dataset}")
        client.query(f"CREATE VIEW `tagpipe-test.{dataset}.{view}` AS {sql}").result()

    def q(sql):
        return [tuple(r.values()) for r in client.query(sql.replace("{ds}", f"`tagpipe-test.{dataset}`")).result()]

    assert q("SELECT COUNT(*) FROM {ds}.outcomes") == [(4,)]
    assert q("SELECT COUNT(*) FROM {ds}.outcomes_unique") == [(3,)]
    assert store.outcome_counts(hours=24 * 3650) == {("meta", "delivered"): 2, ("ga4", "filtered"): 1}
    assert q("SELECT name, currency, value, JSON_VALUE(doc, '$.client.client_id') FROM {ds}.events_unique"
             " ORDER BY event_uid LIMIT 1") == [("purchase", "EUR", 12.5, "c.1")]
    assert q("SELECT hit_id, JSON_VALUE(doc, '$.client_ip') FROM {ds}.raw_hits") == [("h1", "203.0.113.9")]
    assert q("SELECT error_code, schema FROM {ds}.failed_events") == [("meta:190", "tagpipe/failed_event/1-0-0")]
    assert q("SELECT stage, JSON_VALUE(data, '$.events') FROM {ds}.traces") == [("transform", "2")]
    ((data, attrs),) = q("SELECT data, attributes FROM {ds}.dead_letters")
    assert data == b'{"poison":1}'
    assert json.loads(attrs)["CloudPubSubDeadLetterSourceSubscription"] == "deliver"
    assert store.delivered_keys("meta", ["Purchase:e-1"]) == {"Purchase:e-1": "h1:0"}
    bus.close()
    store.close()


def test_rows_that_break_the_schema_are_refused_before_publishing(keyed_store):
    with pytest.raises(ValueError):
        keyed_store.record_trace(None, "h", "s", {})  # type: ignore[arg-type]
    assert "records-traces" not in keyed_store.bus.published


def test_from_env():
    store = BigQueryStore.from_env({"TAGPIPE_GCP_PROJECT": "p", "TAGPIPE_BQ_DATASET": "d", "TAGPIPE_TOPIC_PREFIX": "x",
                                    "TAGPIPE_FIRESTORE_DATABASE": "keys-db"})
    assert (store.project, store.dataset, store.prefix, store.firestore_database) == ("p", "d", "x", "keys-db")
    assert BigQueryStore.from_env({"TAGPIPE_GCP_PROJECT": "p"}).firestore_database == "tagpipe-keys"
