"""The dashboard and the debug view over BigQuery (tagpipe.storage.bigquery_dashboard) against bqemulator.

One pipeline run (real hits through collect -> transform -> deliver to a fake Meta, plus a week of
synthetic outcomes) is recorded into both stores at once: the local SqliteStore and, through the real
BigQuery writer (BigQueryStore: Pub/Sub emulator records topics, Firestore emulator markers, rows moved
into bqemulator tables as the BigQuery subscriptions do), the production tables. Then:

  (a) the BigQuery reader's 11 reads, and the dashboard documents built on them, equal the local store's
  (b) every query it runs is parameterised and bounded by each table's partitioning column
  (c) the lookup box takes hostile input as a plain id
  (d) the overview's aggregates are cached: a refresh within the TTL runs no query
  (e) headless Chromium shows the overview, a lookup and a debug trace over BigQuery, with the bytes scanned,
      and no raw email, phone or IP

Needs bqemulator (TAGPIPE_REQUIRE_BQEMULATOR), the Pub/Sub and Firestore emulators
(TAGPIPE_REQUIRE_EMULATORS) and, for (e), Chromium (TAGPIPE_REQUIRE_BROWSER).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import datetime
from unittest import mock

import httpx
import pytest

from tagpipe.models import HIT_LEVEL
from tagpipe.monitoring.dashboard import DashboardData, DashboardServer, create_dashboard_app
from tagpipe.ops.cli import main
from tagpipe.storage.base import Store
from tagpipe.storage.bigquery import BigQueryStore, FirestoreIndex, row, tables
from tagpipe.storage.bigquery_dashboard import BigQueryDashboardStore, DashboardStoreConfig
from tagpipe.storage.sqlite import SqliteStore
from tagpipe.transport.pubsub import PubSubBus
from tests.e2e.stack import wait_until
from tests.fakes.vendors import FakeVendors
from tests.gcp.conftest import FAST
from tests.gcp.test_bigquery_store import RELAYS, _bq_client, relay
from tests.monitoring import scenario
from tests.monitoring.conftest import Clock, free_port
from tests.monitoring.scenario import PII_EMAIL, PII_PHONE, add, add_hits, fill_history, traced_pipeline
from tests.monitoring.test_browser import assert_no_pii, browser, coloured_pixels, page  # noqa: F401 - fixtures

BQ_PROJECT = "tagpipe-test"  # the project bqemulator serves
TYPES = {"meta": "meta", "ga4": "ga4", "dry_run": "log"}
CLIENT_IP = "198.51.100.77"
HOSTILE = ["'; DROP TABLE outcomes; --", "order-1002' OR '1'='1", "x\" OR \"\"=\"", "555.666\\' OR 1=1 --",
           "ordre-été-😀-\u202e-名前", "@key OR 1=1", "%' OR hit_id LIKE '%", "`tagpipe-test`.x"]  # fmt: skip


class TeeStore(Store):
    """What the pipeline writes goes to both stores; its reads (dedup keys, in-flight journal) are the
    local store's, so both record one and the same run. A trace's time is taken once for both."""

    def __init__(self, local: SqliteStore, cloud: BigQueryStore) -> None:
        self.local, self.cloud = local, cloud

    def record_hits(self, hits):
        self.local.record_hits(hits)
        self.cloud.record_hits(hits)

    def record_events(self, events):
        self.local.record_events(events)
        self.cloud.record_events(events)

    def record_outcomes(self, outcomes, delivered=()):
        fresh = self.local.record_outcomes(outcomes, delivered)
        assert self.cloud.record_outcomes(outcomes, delivered) == fresh
        return fresh

    def record_failures(self, failures):
        self.local.record_failures(failures)
        self.cloud.record_failures(failures)

    def delivered_keys(self, destination, dedup_keys):
        return self.local.delivered_keys(destination, dedup_keys)

    def mark_inflight(self, destination, dedup_keys, hold=0.0):
        return self.local.mark_inflight(destination, dedup_keys, hold)

    def clear_inflight(self, destination, dedup_keys, unheld=()):
        self.local.clear_inflight(destination, dedup_keys, unheld)

    def record_trace(self, debug_token, hit_id, stage, data):
        with mock.patch("time.time", return_value=time.time()):
            self.local.record_trace(debug_token, hit_id, stage, data)
            self.cloud.record_trace(debug_token, hit_id, stage, data)

    def __getattr__(self, name):  # anything else the pipeline asks of its store: the local one
        return getattr(self.local, name)


def table_counts(store: SqliteStore) -> int:
    return sum(store.query(f"SELECT COUNT(*) FROM {t}")[0][0]
               for t in ("raw_hits", "events", "outcomes", "failed_events", "traces"))


@pytest.fixture(scope="module")
def run(tmp_path_factory, bqemulator, pubsub_emulator, firestore_emulator):
    """One shop's traffic, recorded into the local store and into BigQuery."""
    project = f"test-{uuid.uuid4().hex[:10]}"
    dataset = f"ds_{project.replace('-', '_')}"
    tmp = tmp_path_factory.mktemp("dash-bq")
    bus = PubSubBus(BQ_PROJECT, "tagpipe", {**FAST, **RELAYS}, publish_timeout=5.0)
    bus.ensure_topology()
    client = _bq_client(bqemulator)
    cloud = BigQueryStore(BQ_PROJECT, dataset, bus=bus, bigquery_client=client,
                          index=FirestoreIndex(project, "tagpipe-keys", emulator_host=firestore_emulator.host))
    cloud.create_tables()
    tees: list[TeeStore] = []

    def tee(directory):
        tees.append(TeeStore(SqliteStore(directory), cloud))
        return tees[-1]

    hits = [
        {"path": "/events", "headers": {"x-tagpipe-debug": "checkout-test", "user-agent": "Mozilla/5.0 (X11) Chrome/131",
                                        "x-forwarded-for": CLIENT_IP},
         "json": {"event_name": "purchase", "event_id": "order-1001", "value": 42.5, "currency": "EUR",
                  "page_location": "https://shop.example/thanks", "user_data": {"email": PII_EMAIL, "phone": PII_PHONE}}},
        {"path": "/g/collect", "method": "GET", "headers": {"cookie": "_fbp=fb.1.1700000000000.42424242",
                                                             "x-forwarded-for": CLIENT_IP},
         "query": "v=2&tid=G-TEST123&cid=555.666&en=page_view&dl=https%3A%2F%2Fshop.example%2F&tp_debug=checkout-test"
                  "&ep.user_data.email=" + PII_EMAIL.replace("@", "%40")},
        {"path": "/events", "json": "not an object"},  # refused at collect: a failed event, no events
    ]
    broken = [{"path": "/events", "headers": {"x-tagpipe-debug": "token-expired", "x-forwarded-for": CLIENT_IP},
               "json": {"event_name": "purchase", "event_id": "order-1002", "page_location": "https://shop.example/",
                        "user_data": {"email": PII_EMAIL}}}]
    with FakeVendors() as fakes, pytest.MonkeyPatch.context() as mp:
        mp.setattr(scenario, "SqliteStore", tee)
        behind_proxy = {"server": {"trusted_proxies": 1}}  # the load balancer's x-forwarded-for names the client
        rt = traced_pipeline(tmp, fakes, mp, hits, tagging=behind_proxy)
        traced_pipeline(tmp, fakes, mp, broken, break_meta=True, tagging=behind_proxy)
    now = time.time() + 1
    store = tees[0]
    fill_history(store, now, per_hour=3)
    for m in range(30):
        at = now - m * 60 - 20
        add_hits(store, at, 4)
        add(store, "meta", "delivered", at, 3, identifiers=["em", "fbp"] + (["ph"] if m % 2 else []))
        add(store, "meta", "filtered", at, 1, "duplicate")
        add(store, "ga4", "delivered", at, 2, identifiers=["client_id"])
        if m < 5:
            add(store, "meta", "dead_lettered", at, 2, "meta:190", detail="access token expired or invalid")
    add(store, HIT_LEVEL, "rejected", now - 300, 3, "invalid_json", detail="body is not valid JSON")

    local = tees[0].local
    expected, moved, deadline = table_counts(local), 0, time.monotonic() + 60
    while moved < expected and time.monotonic() < deadline:
        moved += relay(bus, client, dataset)
    assert moved == expected
    # the raw hits keep what the browser sent (the page must scrub it): the IP, the email in the body
    stored = [r["doc"] for r in client.query(f"SELECT doc FROM `{BQ_PROJECT}.{dataset}.raw_hits`").result()]
    assert any(CLIENT_IP in d for d in stored) and any(PII_EMAIL in d for d in stored)
    # at-least-once: a BigQuery subscription may write a row twice; the reads must not count it twice
    ((hit_id, event_uid, dest, kind, reason, detail, name, ids, at),) = local.query(
        "SELECT hit_id, event_uid, destination, outcome, reason, detail, event_name, identifiers, at FROM outcomes"
        " WHERE destination = 'meta' AND outcome = 'delivered' ORDER BY at DESC LIMIT 1")
    from tagpipe.models import Outcome, RawHit

    repeat = Outcome(hit_id=hit_id, event_uid=event_uid, destination=dest, outcome=kind, reason=reason, detail=detail,
                     event_name=name, identifiers=ids.split(",") if ids else [], at=at)
    ((raw_doc,),) = local.query("SELECT doc FROM raw_hits ORDER BY received_at DESC LIMIT 1")
    for table, record in (("outcomes", row("outcomes", repeat)), ("raw_hits", row("raw_hits", RawHit.model_validate_json(raw_doc)))):
        assert client.insert_rows_json(f"{BQ_PROJECT}.{dataset}.{table}", [record]) == []

    def reader(**config):
        return BigQueryDashboardStore(DashboardStoreConfig(project=BQ_PROJECT, dataset=dataset, **config),
                                      client=client, clock=Clock(now))

    yield {"local": local, "reader": reader, "client": client, "dataset": dataset, "now": now, "bus": rt.bus}
    bus.close()
    cloud.close()
    for t in tees:
        t.local.close()


# --------------------------------------------------------------------------- comparing


def same(a, b, path="$"):
    """Equal, floats to the microsecond BigQuery keeps (TIMESTAMP)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=0, abs_tol=2e-6), f"{path}: {a} != {b}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(set(a) ^ set(b))}"
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)}\n{a}\n{b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def rows(result):
    return sorted(result, key=repr)


def windows(now: float):
    """[since, until) of the dashboard's 1-hour window (60 s buckets) and of the 7 days before it."""
    until = (math.floor(now / 60) + 1) * 60
    return (until - 3600, until), (until - 3600 - 7 * 86400, until - 3600)


def test_the_eleven_reads_return_what_the_local_store_returns(run):
    local, cloud = run["local"], run["reader"]()
    (since, until), (week_since, week_until) = windows(run["now"])
    for s, u, bucket in ((since, until, 60.0), (week_since, week_until, 3600.0)):
        same(rows(cloud.outcome_breakdown(s, u)), rows(local.outcome_breakdown(s, u)))
        same(rows(cloud.outcome_series(s, u, bucket)), rows(local.outcome_series(s, u, bucket)))
        same(rows(cloud.event_series(s, u, bucket)), rows(local.event_series(s, u, bucket)))
        same(rows(cloud.hit_series(s, u, bucket)), rows(local.hit_series(s, u, bucket)))
        same(cloud.hit_count(s, u), local.hit_count(s, u))
        same(rows(cloud.identifier_counts_by_event(s, u)), rows(local.identifier_counts_by_event(s, u)))
    same(cloud.last_hit_at(run["now"] + 1), local.last_hit_at(run["now"] + 1))
    same(cloud.debug_tokens(), local.debug_tokens())
    assert [t for t, *_ in cloud.debug_tokens()] == ["token-expired", "checkout-test"]
    for token in ("checkout-test", "token-expired", "no-such-token"):
        same({k: rows(v) for k, v in cloud.debug_trace(token).items()},
             {k: rows(v) for k, v in local.debug_trace(token).items()})
    refused = local.query("SELECT hit_id FROM failed_events WHERE stage = 'collect'")[0][0]
    for key in ("order-1001", "order-1002", "555.666", refused, "no-such-order"):
        found = cloud.find_hits(key)
        assert found == local.find_hits(key), key
        same({k: rows(v) for k, v in cloud.hit_records(found).items()},
             {k: rows(v) for k, v in local.hit_records(found).items()})
    assert cloud.find_hits(refused) == [refused]  # a hit refused at collect has no events, and is found


def test_the_dashboard_documents_are_the_same_over_both_stores(run):
    """What the page shows: the overview, the debug list and trace, lookups."""
    local = DashboardData(run["local"], destination_types=TYPES, clock=Clock(run["now"]))
    cloud = DashboardData(run["reader"](), destination_types=TYPES, clock=Clock(run["now"]))
    for window in (3600, 86400):
        mine, theirs = cloud.metered(cloud.summary, window), local.summary(window)
        assert mine.pop("scanned")["queries"] > 0
        same(mine, theirs)
    same(cloud.debug_tokens(), local.debug_tokens())
    same(cloud.debug_detail("checkout-test"), local.debug_detail("checkout-test"))
    for key in ("order-1002", "555.666"):
        same(cloud.lookup(key), local.lookup(key))
    found = cloud.lookup("order-1002")["hits"]
    meta = [d for d in found[0]["events"][0]["destinations"] if d["destination"] == "meta"]
    assert meta[0]["outcome"]["outcome"] == "dead_lettered" and meta[0]["outcome"]["reason"] == "meta:190"


# --------------------------------------------------------------------------- partition filters, parameters

TABLE_REF = re.compile(r"FROM `[^`]+`\.(\w+)")


def every_read(cloud: BigQueryDashboardStore, now: float) -> None:
    (since, until), _ = windows(now)
    cloud.outcome_breakdown(since, until)
    cloud.outcome_series(since, until, 60.0)
    cloud.event_series(since, until, 60.0)
    cloud.hit_series(since, until, 60.0)
    cloud.hit_count(since, until)
    cloud.last_hit_at(now + 1)
    cloud.identifier_counts_by_event(since, until)
    cloud.debug_tokens()
    cloud.debug_trace("checkout-test")
    cloud.hit_records(cloud.find_hits("order-1002"))
    cloud.find_hits("no-such-order")  # the refused-hit fallback: raw_hits and failed_events


def test_every_query_is_bounded_by_each_tables_partition_column(run):
    cloud = run["reader"](lookback_days=3)
    every_read(cloud, run["now"])
    assert {r.name for r in cloud.history} >= {
        "outcome_breakdown", "outcome_series", "event_series", "hit_series", "hit_count", "last_hit_at",
        "identifier_counts_by_event", "debug_tokens", "debug_trace", "find_hits", "find_hits_refused",
        "hit_records_span", "hit_records_traces", "hit_records_failed", "hit_records_raw_hits",
        "hit_records_events", "hit_records_outcomes"}
    spec = tables()
    floor = datetime.fromtimestamp(run["now"] - 3 * 86400).astimezone()  # lookback_days=3
    for record in cloud.history:
        # each FROM's own WHERE (up to the next FROM) bounds that table's partition column from below
        parts = TABLE_REF.split(record.sql)[1:]
        referenced = parts[0::2]
        assert referenced and sorted(set(referenced)) == sorted(record.tables), record.sql
        for table, rest in zip(parts[0::2], parts[1::2], strict=True):
            column = spec[table]["partition_field"]
            where = rest.split(" FROM ")[0]
            assert re.search(rf"WHERE {column} >= @since_ts", where), (record.name, record.sql)
            assert record.params["since_ts"] >= floor, record.name
            if record.name in ("outcome_breakdown", "outcome_series", "event_series", "hit_series", "hit_count",
                               "identifier_counts_by_event", "last_hit_at", "hit_records_events"):
                assert f"{column} < @until_ts" in where, record.name
        assert record.bytes_billed >= 10 * 2**20 * len(record.tables)  # BigQuery's minimum per table


def test_the_lookup_box_takes_hostile_input_as_a_plain_id(run):
    cloud = run["reader"]()
    data = DashboardData(cloud, destination_types=TYPES, clock=Clock(run["now"]))
    before = run["local"].query("SELECT COUNT(*) FROM outcomes")[0][0] + 1  # the repeated row
    for key in HOSTILE:
        cloud.history.clear()
        assert data.lookup(key)["hits"] == [], key
        for record in cloud.history:
            assert key not in record.sql and key.strip() in record.params.values(), record.name
    # an id that is a real one, with a quote around it, is not that id either
    assert data.lookup("order-1002'")["hits"] == [] and len(data.lookup("order-1002")["hits"]) == 1
    client = run["client"]
    ((count,),) = [tuple(r.values()) for r in client.query(
        f"SELECT COUNT(*) FROM `{BQ_PROJECT}.{run['dataset']}.outcomes`").result()]
    assert count == before  # nothing was dropped or changed


# --------------------------------------------------------------------------- the cache


def test_a_refresh_within_the_ttl_runs_no_query(run):
    # the 1-hour window moves on by a 60 s bucket each minute (a new window: read again); within one, a refresh
    clock = Clock(math.floor(run["now"] / 60) * 60 + 1)
    cloud = run["reader"](cache_ttl=60)
    cloud.clock = clock
    data = DashboardData(cloud, destination_types=TYPES, clock=clock)
    first = data.metered(data.summary, 3600)
    queries = len(cloud.history)
    assert first["scanned"]["queries"] == queries > 0
    clock.advance(seconds=15)  # the page polls every 15 s
    second = data.metered(data.summary, 3600)
    assert len(cloud.history) == queries and second["scanned"]["queries"] == 0
    assert second["scanned"]["from_cache"] > 0 and second["scanned"]["bytes_billed"] == 0
    assert {k: v for k, v in second.items() if k not in ("scanned", "generated_at")} == \
        {k: v for k, v in first.items() if k not in ("scanned", "generated_at")}
    # past the TTL the same window is read again
    (since, until), _ = windows(run["now"])
    cloud.outcome_breakdown(since, until)
    assert len(cloud.history) == queries
    clock.advance(seconds=61)
    cloud.outcome_breakdown(since, until)
    assert len(cloud.history) == queries + 1 and cloud.history[-1].name == "outcome_breakdown"


def test_scan_figures_come_from_the_jobs_statistics():
    """bqemulator reports no bytes; this checks the arithmetic with a client whose jobs do."""

    class Job:
        def __init__(self, processed, billed, cached=False):
            self.total_bytes_processed, self.total_bytes_billed, self.cache_hit = processed, billed, cached

        def result(self, timeout=None):
            return []

    class Client:
        def __init__(self):
            self.jobs = [Job(None, None), Job(3 * 2**30, 3 * 2**30), Job(0, 0, cached=True)]
            self.dry = []

        def query(self, sql, job_config=None):
            if job_config.dry_run:
                self.dry.append(sql)
                return Job(5 * 2**20, None)
            return self.jobs.pop(0)

    fake = Client()
    cloud = BigQueryDashboardStore(DashboardStoreConfig(project="p", dataset="d", cache_ttl=0), client=fake)
    with cloud.meter() as scan:
        cloud.debug_tokens()  # no statistics: a dry run says 5 MiB; billed at the 10 MB minimum
        cloud.debug_tokens()
        cloud.debug_tokens()  # BigQuery's own result cache: nothing billed
    assert len(fake.dry) == 1
    assert [r.bytes_processed for r in cloud.history] == [5 * 2**20, 3 * 2**30, 0]
    assert [r.bytes_billed for r in cloud.history] == [10 * 2**20, 3 * 2**30, 0]
    doc = scan.as_dict()
    assert doc["queries"] == 3 and doc["bytes_billed"] == 10 * 2**20 + 3 * 2**30
    assert doc["usd"] == pytest.approx((10 * 2**20 + 3 * 2**30) / 2**40 * 6.25, abs=1e-6)
    assert doc["text"] == "BigQuery: 3 queries scanned 3.00 GiB (billed 3.01 GiB, about $0.0184 on demand)"


# --------------------------------------------------------------------------- the command


def test_tagpipe_dashboard_store_bigquery(run, bqemulator, tmp_path):
    """`tagpipe dashboard --store bigquery` as a user runs it, its credentials pointed at the emulator."""
    config = tmp_path / "tagpipe.toml"
    config.write_text('[destinations.meta]\ntype = "log"\n')
    port = free_port()
    env = {**os.environ, "BIGQUERY_EMULATOR_HOST": bqemulator.host, "TAGPIPE_GCP_PROJECT": BQ_PROJECT,
           "TAGPIPE_BQ_DATASET": run["dataset"], "TAGPIPE_DASHBOARD_TOKEN": "t0ken-for-this-test"}
    proc = subprocess.Popen([sys.executable, "-m", "tagpipe.ops.cli", "--config", str(config), "dashboard",
                             "--store", "bigquery", "--port", str(port), "--cache-ttl", "30"],
                            env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            assert proc.poll() is None, proc.stderr.read()
            try:
                return httpx.get(base + "/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, what="tagpipe dashboard to listen")
        assert httpx.get(base + "/api/summary").status_code == 401  # the token is set: it is needed
        auth = {"authorization": "Bearer t0ken-for-this-test"}
        summary = httpx.get(base + "/api/summary?window=24h", headers=auth, timeout=30).json()
        assert summary["totals"]["hits"] > 100 and summary["scanned"]["queries"] > 0
        assert [d["id"] for d in summary["destinations"]][-1] == "meta"
        found = httpx.get(base + "/api/lookup", params={"q": "order-1002"}, headers=auth, timeout=30).json()
        assert [e["event_id"] for h in found["hits"] for e in h["events"]] == ["order-1002"]
        assert "BigQuery: " in found["scanned"]["text"]
    finally:
        proc.terminate()
        proc.wait(10)
    assert f"over BigQuery {BQ_PROJECT}.{run['dataset']}" in proc.stderr.read()


def test_tagpipe_dashboard_says_what_is_missing(bqemulator, monkeypatch, capsys):
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bqemulator.host)
    for name in ("TAGPIPE_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["dashboard", "--store", "bigquery"]) == 2
    assert "project" in capsys.readouterr().err
    assert main(["dashboard", "--store", "bigquery", "--project", BQ_PROJECT, "--dataset", "no_such_dataset"]) == 2
    err = capsys.readouterr().err
    assert "no_such_dataset" in err and "gcloud auth application-default login" in err


# --------------------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def site(run, browser):  # noqa: F811 - the browser fixture imported above
    app = create_dashboard_app(store=run["reader"](), destination_types=TYPES, clock=Clock(run["now"]), token="")
    server = DashboardServer(app, "127.0.0.1", free_port(), token_set=False)
    assert server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.close()


def assert_no_raw_pii(html: str) -> None:
    assert_no_pii(html)
    assert CLIENT_IP not in html


def test_the_page_over_bigquery(site, page, run, tmp_path):  # noqa: F811 - the page fixture imported above
    page.goto(site + "/")
    page.wait_for_selector("body[data-ready='1']")
    api = httpx.get(site + "/api/summary?window=1h").json()
    t = api["totals"]
    (since, until), _ = windows(run["now"])
    assert t["hits"] == run["local"].hit_count(since, until) > 30 * 4
    assert t["dead_lettered"] == 5 * 2 + 1  # synthetic + the broken traced hit
    assert page.locator("[data-kpi='hits'] .value").inner_text() == f"{t['hits']:,}"
    assert page.locator("[data-kpi='delivered'] .value").inner_text() == f"{t['delivered']:,}"
    assert page.locator("[data-dest='meta'] [data-field='dead_lettered'] b").inner_text() == "11"
    assert "the access token expired" in page.locator("#reasons [data-reason='meta:190']").inner_text()
    scanned = page.locator("#overview [data-field='scanned']")
    assert scanned.is_visible() and re.fullmatch(
        r"BigQuery: \d+ queries scanned .+ \(billed .+, about \$\d+\.\d{4} on demand\)(; \d+ from the dashboard's cache)?",
        scanned.inner_text()), scanned.inner_text()
    assert coloured_pixels(page.locator("#chart-outcomes").screenshot()) > 2000
    shot = tmp_path / "dashboard-bigquery.png"
    page.screenshot(path=str(shot), full_page=True)
    assert coloured_pixels(shot.read_bytes()) > 5000 and shot.stat().st_size > 30_000  # not blank
    print(f"\nscreenshot: {shot}")
    assert_no_raw_pii(page.content())

    page.goto(site + "/#lookup/order-1002")
    page.wait_for_selector("[data-hit] tr[data-destination='meta']")
    meta = page.locator("[data-hit] tr[data-destination='meta']")
    assert "dead-lettered" in meta.inner_text() and "meta:190" in meta.inner_text()
    assert "BigQuery: " in page.locator("#trace [data-field='scanned']").inner_text()
    page.screenshot(path=str(tmp_path / "lookup-bigquery.png"), full_page=True)
    assert_no_raw_pii(page.content())
    page.fill("#lookup-q", HOSTILE[0])
    page.press("#lookup-q", "Enter")
    page.wait_for_selector("text=Nothing on record for this id.")

    page.goto(site + "/#debug")
    page.wait_for_selector("[data-token='checkout-test']")
    page.click("[data-token='checkout-test']")
    page.wait_for_selector("[data-hit]")
    assert page.locator("[data-hit]").count() == 2
    for summary in page.locator("#trace details summary").all():
        summary.click()
    text = page.locator("#trace").inner_text()
    assert "1 · Received by collect" in text and "purchase · event_id order-1001" in text and "page_view" in text
    row_ = page.locator("[data-hit] tr[data-destination='meta']").first
    assert "delivered" in row_.inner_text() and "HTTP 200" in row_.inner_text() and "access_token=***" in row_.inner_text()
    assert "[redacted]" in text and "sha256:" in text
    shot = tmp_path / "debug-bigquery.png"
    page.screenshot(path=str(shot), full_page=True)
    assert coloured_pixels(shot.read_bytes()) > 500
    assert_no_raw_pii(page.content())
    raw = json.dumps(httpx.get(site + "/api/debug/checkout-test").json())
    assert_no_raw_pii(raw)
