"""erase: a user is gone from every table of the store and from the queue; retention purges old rows.

The data is made by the real local stack (tests/e2e/stack.py): hits over HTTP, transform, deliver,
outcomes, traces; then a few rows the stack makes only on failures are added through the Store API.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time

import httpx
import pytest

from tagpipe.models import DeliveryTask, Event, FailedEvent, Outcome, OutcomeKind, RawHit
from tagpipe.ops.erase import RetentionJob, erase, purge_older_than
from tagpipe.storage.base import DeliveredKey
from tagpipe.storage.sqlite import SqliteStore
from tagpipe.transport.base import DELIVERIES, RAW_HITS
from tagpipe.transport.local import LocalBus
from tests.e2e.stack import LocalStack, wait_until

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36"
SHA = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731

JANE = {"email": "jane@example.com", "user_id": "jane-42", "client_id": "777.888"}
BOB = {"email": "bob@example.org", "user_id": "bob-7", "client_id": "555.666"}


def _send(stack: LocalStack, who: dict, order: str) -> list[str]:
    """A gtag page view (client id only, traced) and a JSON purchase (email, user id, _ga cookie)."""
    hits = []
    q = (f"v=2&tid=G-TEST123&cid={who['client_id']}&en=page_view&dl=https%3A%2F%2Fshop.example%2F"
         f"&tp_debug=trace-{order}")  # fmt: skip
    r = httpx.get(f"{stack.url}/g/collect?{q}", headers={"user-agent": CHROME})
    assert r.status_code == 204
    body = {"event_name": "purchase", "event_id": order, "value": 5, "currency": "EUR", "user_id": who["user_id"],
            "page_location": f"https://shop.example/thanks?order={order}", "user_data": {"email": who["email"]}}  # fmt: skip
    cid = who["client_id"]
    r = httpx.post(f"{stack.url}/events", json=body, headers={"cookie": f"_ga=GA1.1.{cid}", "user-agent": CHROME})
    assert r.status_code == 200, r.text
    hits.append(r.json()["hit_id"])
    return hits


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A store and queue holding Jane's and Bob's data, made once; each test erases a copy."""
    root = tmp_path_factory.mktemp("erase")
    with LocalStack(root / "stack", '[destinations.dry_run]\ntype = "log"\n') as stack:
        jane_hits = _send(stack, JANE, "J-1")
        _send(stack, BOB, "B-1")
        wait_until(lambda: len([o for o in stack.outcomes() if o[3] == "delivered"]) == 4, what="4 deliveries")
        wait_until(lambda: stack.store.query("SELECT count(*) FROM traces")[0][0] >= 4, what="traces")
        stack.store.close()
        stack._store = None
    data = root / "stack" / "data"
    store = SqliteStore(data)
    # rows the stack writes only when things fail: a failed event and a rejected raw hit of Jane's,
    # a raw hit that never parsed (with her email in it), and a dead-lettered outcome
    store.record_failures([FailedEvent(stage="deliver", hit_id=jane_hits[0], event_uid=f"{jane_hits[0]}:0",
                                       destination="dry_run", error_code="x", message="m", payload="{}")])  # fmt: skip
    broken = RawHit(source="json", body='{"event_name": "x", "user_data": {"email": "JANE@example.com"}, oops')
    store.record_hits([broken])
    store.record_outcomes([Outcome(hit_id=broken.hit_id, outcome=OutcomeKind.REJECTED, reason="invalid_json")])
    store.close()
    # work still queued when the request arrives: a raw hit and a delivery task of Jane's, one of Bob's
    bus = LocalBus(data)
    queued = RawHit(source="json", body=json.dumps({"event_name": "page_view", "user_id": JANE["user_id"]}))
    bus.publish(RAW_HITS, queued.model_dump_json().encode())
    bus.publish(RAW_HITS, RawHit(source="json", body=json.dumps({"event_name": "page_view", "user_id": "bob-7"})).model_dump_json().encode())
    task = DeliveryTask(event_uid="q:0", hit_id="q", event_id="J-9", event_name="Purchase", event_time=time.time(),
                        destination="dry_run", payload={"user_data": {"em": [SHA(JANE["email"])]}})  # fmt: skip
    bus.publish(DELIVERIES, task.model_dump_json().encode(), {"destination": "dry_run"})
    bus.close()
    return {"dir": data, "jane_hits": jane_hits}


@pytest.fixture
def data(dataset, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(dataset["dir"], copy)
    return copy


def dump(directory) -> dict[str, list[str]]:
    """Every row of every table of store.db and queue.db, as text."""
    out: dict[str, list[str]] = {}
    for name in ("store.db", "queue.db"):
        conn = sqlite3.connect(directory / name)
        try:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"):
                rows = conn.execute(f"SELECT * FROM {table}").fetchall()
                out[f"{name}:{table}"] = [" ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                                                   for v in row).lower() for row in rows]  # fmt: skip
        finally:
            conn.close()
    return out


def traces_of(who: dict) -> list[str]:
    return [who["email"], SHA(who["email"]), who["user_id"], who["client_id"]]


def tables_holding(directory, needles: list[str]) -> dict[str, int]:
    found = {}
    for table, rows in dump(directory).items():
        n = sum(1 for r in rows if any(x.lower() in r for x in needles))
        if n:
            found[table] = n
    return found


def test_the_dataset_holds_both_users_everywhere(data):
    jane = tables_holding(data, traces_of(JANE))
    for table in ("store.db:raw_hits", "store.db:events", "queue.db:messages"):
        assert table in jane, jane
    counts = {t: len(rows) for t, rows in dump(data).items()}
    for table in ("raw_hits", "events", "outcomes", "delivered", "traces", "failed_events"):
        assert counts[f"store.db:{table}"] > 0, counts


def test_erase_by_email_removes_the_user_from_every_table(data, dataset):
    before = {t: len(r) for t, r in dump(data).items()}
    result = erase(data, email="  Jane@Example.COM ")
    assert "777.888" in result.client_ids and "jane-42" in result.user_ids  # expanded from the email
    assert tables_holding(data, traces_of(JANE)) == {}
    # hit ids of her hits are gone too (outcomes, traces, failures, delivered keys reference them)
    assert tables_holding(data, dataset["jane_hits"]) == {}
    after = {t: len(r) for t, r in dump(data).items()}
    for table in ("store.db:events", "store.db:raw_hits", "store.db:outcomes", "store.db:delivered",
                  "store.db:traces", "store.db:failed_events", "queue.db:messages"):  # fmt: skip
        assert after[table] < before[table], (table, before, after)
    # Bob is untouched
    bob = tables_holding(data, traces_of(BOB))
    assert {"store.db:events", "store.db:raw_hits", "queue.db:messages"} <= set(bob)
    assert after["store.db:outcomes"] >= 2 and after["store.db:delivered"] >= 2  # Bob's two deliveries
    events = sqlite3.connect(data / "store.db").execute("SELECT name, client_id FROM events ORDER BY name").fetchall()
    assert events == [("page_view", BOB["client_id"]), ("purchase", BOB["client_id"])]
    assert result.total == sum(before.values()) - sum(after.values())


def test_erase_by_client_id(data):
    erase(data, client_id="777.888")
    # expansion: client id -> her user id and email hash -> the queued hit naming only her user id,
    # and the broken raw hit holding only her raw address
    assert tables_holding(data, traces_of(JANE)) == {}


def test_erase_by_user_id_without_expansion_keeps_her_anonymous_page_views(data):
    erase(data, user_id="jane-42", expand=False)
    left = dump(data)["store.db:events"]
    assert [r for r in left if "jane-42" in r or SHA(JANE["email"]) in r] == []
    assert any("777.888" in r and "page_view" in r for r in left)  # the page view had no user id


def test_erase_needs_an_identifier(data):
    with pytest.raises(ValueError):
        erase(data, email=" ")


def test_erase_leaves_no_bytes_in_the_files(data):
    erase(data, email=JANE["email"])
    for name in ("store.db", "queue.db"):
        for f in data.glob(f"{name}*"):
            assert b"jane@example.com" not in f.read_bytes().lower(), f  # secure_delete + WAL checkpoint


# ------------------------------------------------------------------ retention


def test_purge_older_than(tmp_path):
    store = SqliteStore(tmp_path)
    now = time.time()
    old, new = now - 40 * 86_400, now - 86_400
    store.record_hits([RawHit(hit_id="old", source="json", received_at=old), RawHit(hit_id="new", source="json", received_at=new)])
    store.record_events([Event(event_uid=f"{h}:0", hit_id=h, event_id=h, name="x", timestamp=t, source="json")
                         for h, t in (("old", old), ("new", new))])  # fmt: skip
    store.record_outcomes([Outcome(hit_id=h, outcome=OutcomeKind.DELIVERED, at=t, destination="d", event_uid=f"{h}:0")
                           for h, t in (("old", old), ("new", new))],
                          [DeliveredKey("d", "x:old", "old:0"), DeliveredKey("d", "x:new", "new:0")])  # fmt: skip
    store.record_failures([FailedEvent(stage="transform", hit_id=h, error_code="e", message="m", at=t)
                           for h, t in (("old", old), ("new", new))])  # fmt: skip
    store.record_trace("tok", "new", "transform", {})
    conn = sqlite3.connect(tmp_path / "store.db")
    conn.execute("UPDATE delivered SET at = ? WHERE dedup_key = 'x:old'", (old,))
    conn.commit()
    conn.close()
    store.close()
    deleted = purge_older_than(tmp_path, 30, now=now)
    assert {k: v for k, v in deleted.items() if v} == {"raw_hits": 1, "events": 1, "outcomes": 1, "failed_events": 1,
                                                       "delivered": 1}  # fmt: skip
    left = dump_store(tmp_path)
    assert all("old" not in r for rows in left.values() for r in rows)
    assert all(left[t] for t in ("raw_hits", "events", "outcomes", "failed_events", "delivered", "traces"))
    with pytest.raises(ValueError):
        purge_older_than(tmp_path, 0)


def dump_store(directory) -> dict[str, list[str]]:
    return {t.split(":")[1]: rows for t, rows in dump_only(directory, "store.db").items()}


def dump_only(directory, name):
    conn = sqlite3.connect(directory / name)
    try:
        out = {}
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"):
            out[f"{name}:{table}"] = [" ".join(map(str, r)) for r in conn.execute(f"SELECT * FROM {table}")]
        return out
    finally:
        conn.close()


def test_retention_job_runs_at_start_and_stops(tmp_path):
    store = SqliteStore(tmp_path)
    store.record_hits([RawHit(hit_id="old", source="json", received_at=time.time() - 10 * 86_400)])
    store.close()
    job = RetentionJob(tmp_path, days=7, interval=3600).start()
    wait_until(lambda: job.runs >= 1, 10, what="the first retention run")
    job.close()
    assert not job.thread.is_alive()
    assert dump_store(tmp_path)["raw_hits"] == []


def test_raw_hits_have_a_default_retention_even_when_nothing_else_does(tmp_path):
    from tagpipe.ops.erase import retention_plan
    from tagpipe.privacy import PrivacyConfig

    plan = retention_plan(PrivacyConfig())  # the defaults: retention_days 0 (keep), raw hits 30 days
    assert plan["raw_hits"] == 30 and plan["events"] == 0
    assert retention_plan(PrivacyConfig(retention_days=7))["raw_hits"] == 7  # the shorter one wins
    assert retention_plan(PrivacyConfig(raw_hits_retention_days=0))["raw_hits"] == 0
    store = SqliteStore(tmp_path)
    now = time.time()
    old = now - 40 * 86_400
    store.record_hits([RawHit(hit_id="old", source="json", received_at=old, body='{"email": "jane@example.com"}'),
                       RawHit(hit_id="new", source="json", received_at=now)])
    store.record_events([Event(event_uid="old:0", hit_id="old", event_id="old", name="x", timestamp=old, source="json")])
    store.close()
    deleted = purge_older_than(tmp_path, plan, now=now)
    assert {k: v for k, v in deleted.items() if v} == {"raw_hits": 1}
    left = dump_store(tmp_path)
    assert len(left["raw_hits"]) == 1 and "jane@example.com" not in " ".join(left["raw_hits"])
    assert len(left["events"]) == 1  # pseudonymised events stay, as retention_days (0) says
