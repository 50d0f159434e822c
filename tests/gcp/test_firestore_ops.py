"""Firestore document operations per delivery, counted on the emulator: deliver (real Deliverer, local queue,
fake vendors) on a BigQueryStore whose FirestoreIndex talks to the Firestore emulator and counts what it
asks for. Billing is per document: a read per document asked for in a batchGet, a write per document
created, and later a TTL delete per created document. Run with -s to see the table."""

from __future__ import annotations

from collections import Counter

import pytest

from tagpipe.config import load_config
from tagpipe.errors import StoreUnavailable
from tagpipe.models import Outcome, OutcomeKind, RawHit
from tagpipe.pipeline.deliver import Deliverer
from tagpipe.pipeline.stage import settle
from tagpipe.pipeline.transform import Transformer
from tagpipe.runtime import build_runtime, exact_outcomes
from tagpipe.storage.base import DeliveredKey
from tagpipe.storage.bigquery import BigQueryStore, FirestoreIndex
from tagpipe.transport.base import RAW_HITS
from tests.fakes.vendors import FakeVendors
from tests.gcp.test_bigquery_store import RecordingBus


class CountingIndex(FirestoreIndex):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ops: Counter = Counter()

    def _post(self, verb, body):
        result = super()._post(verb, body)
        if verb == "batchGet":
            self.ops["reads"] += len(body["documents"])
            self.ops["requests"] += 1
        elif verb == "batchWrite":
            self.ops["requests"] += 1
            statuses = result.get("status") or [{}] * len(body["writes"])
            for write, status in zip(body["writes"], statuses, strict=True):
                ok = status.get("code", 0) in (0, None)
                if "delete" in write:
                    self.ops["deletes"] += ok
                else:
                    self.ops["writes"] += ok  # a create refused by its precondition writes nothing
                    self.ops["refused_creates"] += not ok
        return result


def deliver_events(tmp_path, fakes, index, dedup: str, names: list[str]) -> tuple[Counter, int]:
    path = tmp_path / f"{dedup}.toml"
    path.write_text(f"""
[storage]
dir = "{tmp_path / dedup}"

[delivery]
dedup = "{dedup}"

[destinations.ga4]
type = "ga4"
measurement_id = "G-TEST123"
endpoint = "{fakes.url}"
""")
    rt = build_runtime(load_config(path))
    local_store = rt.store
    try:
        for i, name in enumerate(names):
            hit = RawHit(source="json", body=f'{{"event_name": "{name}", "event_id": "{dedup}-{i}", "client_id": "1.{i}"}}')
            rt.bus.publish(RAW_HITS, hit.model_dump_json().encode())
        for stage in (Transformer(rt), Deliverer(rt)):
            if isinstance(stage, Deliverer):
                rt.store = BigQueryStore("tagpipe-test", bus=RecordingBus(), index=index,
                                         exact_outcomes=exact_outcomes(rt.config))
            messages = rt.bus.pull(stage.subscription, 1000)
            settle(rt.bus, stage.subscription, messages, stage.handle(messages))
        delivered = sum(1 for r in rt.store.bus.published.get("records-outcomes", []) if r["outcome"] == "delivered")
        return index.ops, delivered
    finally:
        rt.store = local_store
        rt.close()


MIX = ["page_view"] * 17 + ["view_item", "add_to_cart"] + ["purchase"]  # 1 conversion in 20


@pytest.mark.parametrize("dedup, per_delivery", [
    # before the delivered marker stood for the outcome too: all 1.0 / 2.0, conversions 0.05 / 1.05;
    # before outcomes outside the dedup scope went unmarked: conversions 0.05 / 1.0, none 0.0 / 1.0
    ("all", {"reads": 1.0, "writes": 1.0}),
    ("conversions", {"reads": 0.05, "writes": 0.05}),
    ("none", {"reads": 0.0, "writes": 0.0}),
])
def test_document_ops_per_delivery(tmp_path, monkeypatch, firestore_emulator, project, dedup, per_delivery):
    with FakeVendors() as fakes:
        monkeypatch.setenv("GA4_API_SECRET", fakes.ga4_api_secret)
        index = CountingIndex(project, f"ops-{dedup}", emulator_host=firestore_emulator.host)
        ops, delivered = deliver_events(tmp_path, fakes, index, dedup, MIX)
        index.close()
    assert delivered == len(MIX) == fakes.ga4.count
    measured = {k: ops[k] / delivered for k in ("reads", "writes")}
    print(f"\nfirestore dedup={dedup}: per delivery reads {measured['reads']:.2f}, writes {measured['writes']:.2f}, "
          f"TTL deletes later {measured['writes']:.2f}; requests {ops['requests']} for {delivered} deliveries")
    assert measured == pytest.approx(per_delivery)
    assert ops["deletes"] == 0 and ops["refused_creates"] == 0


# --------------------------------------------------------------------------- the merged marker's edge cases


def delivered(dest: str, uid: str, hit: str) -> Outcome:
    return Outcome(hit_id=hit, event_uid=uid, destination=dest, outcome=OutcomeKind.DELIVERED, reason="ok",
                   event_name="Purchase")


@pytest.fixture
def counted(firestore_emulator, project):
    index = CountingIndex(project, "merged-markers", emulator_host=firestore_emulator.host)
    store = BigQueryStore(project, "tagpipe", bus=RecordingBus(), index=index)
    yield store
    store.close()


def test_a_delivery_writes_one_document_and_its_repeat_is_not_new(counted):
    o, key = delivered("meta", "h1:0", "h1"), DeliveredKey("meta", "Purchase:o-1", "h1:0")
    assert counted.record_outcomes([o], [key]) == [True]
    assert counted.index.ops["writes"] == 1
    assert counted.delivered_keys("meta", ["Purchase:o-1"]) == {"Purchase:o-1": "h1:0"}
    assert counted.record_outcomes([o], [key]) == [False]  # the same event again (a redelivered task)
    assert counted.index.ops["writes"] == 1
    assert len(counted.bus.published["records-outcomes"]) == 1


def test_another_event_with_the_same_event_id_sent_meanwhile_still_gets_its_outcome(counted):
    assert counted.record_outcomes([delivered("meta", "h1:0", "h1")],
                                   [DeliveredKey("meta", "Purchase:o-2", "h1:0")]) == [True]
    # a second hit with the same event_id, sent by another instance before it saw the first marker
    other = delivered("meta", "h2:0", "h2")
    assert counted.record_outcomes([other], [DeliveredKey("meta", "Purchase:o-2", "h2:0")]) == [True]
    assert counted.record_outcomes([other], [DeliveredKey("meta", "Purchase:o-2", "h2:0")]) == [False]
    rows = counted.bus.published["records-outcomes"]
    assert sorted(r["hit_id"] for r in rows) == ["h1", "h2"]
    assert counted.delivered_keys("meta", ["Purchase:o-2"]) == {"Purchase:o-2": "h1:0"}  # the first one keeps it


def test_a_failed_publish_undoes_the_marker_so_the_retry_records_the_outcome(counted):
    o, key = delivered("meta", "h3:0", "h3"), DeliveredKey("meta", "Purchase:o-3", "h3:0")
    counted.bus.fail = True
    with pytest.raises(StoreUnavailable):
        counted.record_outcomes([o], [key])
    assert counted.delivered_keys("meta", ["Purchase:o-3"]) == {}  # deliver will send it again, not ack it
    counted.bus.fail = False
    assert counted.record_outcomes([o], [key]) == [True]
    assert len(counted.bus.published["records-outcomes"]) == 1


def test_outside_the_exact_scope_an_outcome_is_recorded_without_a_marker(firestore_emulator, project):
    index = CountingIndex(project, "unmarked", emulator_host=firestore_emulator.host)
    store = BigQueryStore(project, "tagpipe", bus=RecordingBus(), index=index, exact_outcomes=lambda d: d == "ads")
    try:
        page_view = Outcome(hit_id="h9", event_uid="h9:0", destination="meta", outcome=OutcomeKind.DELIVERED,
                            reason="ok", event_name="PageView")
        filtered = Outcome(hit_id="h9", event_uid="h9:0", destination="ads", outcome=OutcomeKind.FILTERED,
                           reason="consent")
        assert store.record_outcomes([page_view, page_view, filtered]) == [True, False, True]
        assert index.ops["writes"] == 1  # the "ads" outcome only
        # a redelivered page_view is recorded again: outcomes_unique and outcome_counts collapse the repeat
        assert store.record_outcomes([page_view, filtered]) == [True, False]
        assert [r["destination"] for r in store.bus.published["records-outcomes"]] == ["meta", "ads", "meta"]
    finally:
        store.close()
