"""The dashboard and the debug view over BigQuery, the production store.

`BigQueryDashboardStore` answers the 11 reads DashboardData and Metrics make of SqliteStore
(outcome_breakdown, outcome_series, event_series, hit_series, hit_count, last_hit_at,
identifier_counts_by_event, debug_tokens, debug_trace, find_hits, hit_records) with the same tuples,
over the tables the BigQuery subscriptions write (storage/bigquery.py). Every query:

  - is parameterised: the lookup box is user input, and nothing the user types is formatted into SQL;
  - is bounded by the partitioning column of each table it reads (tables.json: raw_hits.received_at,
    events.event_time, outcomes / failed_events / traces.recorded_at): the dashboard's window for the
    overview, `lookback_days` for the debug list and lookups, so BigQuery prunes the other days;
  - collapses the rare repeated row of an at-least-once BigQuery subscription (one outcome per
    (hit, event, destination), the newest; one event per event_uid; one hit per hit_id), as the
    outcomes_unique view does, but inside the partition filter, which a view cannot prune;
  - is metered: bytes processed and billed from the job's statistics (a dry run where a job reports
    none), summed per request by `meter()` and shown on the page.

The overview's reads are cached for `cache_ttl` seconds keyed by their window, so a refresh (the page
polls every 15 s) and the second Metrics of a request run no query. The tables hold canonical events
with hashed identifiers; raw_hits keeps the request as received, which DashboardData scrubs
(tagpipe.monitoring.redact) before anything is shown, exactly as for the local store.

Credentials: the user's own (Application Default Credentials, `gcloud auth application-default
login`), or the Cloud Run service account; BIGQUERY_EMULATOR_HOST points at an emulator.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tagpipe.errors import StoreUnavailable
from tagpipe.storage.bigquery_read import (
    MIN_BILLED_PER_TABLE,
    PRICE_PER_TIB,
    bigquery_client,
    bq_timestamp,
    human_bytes,
    query_parameters,
)

DAY = 86400.0
# an event's outcomes, failures and traces are recorded after its hit was received; a clock running
# behind by up to this much still finds them (functions' clocks are NTP-synced: this is a margin)
RECORD_SKEW = 3600.0
# an event's own time may come from the client (gtag, the JSON API), which can run a day off
EVENT_SKEW = DAY


class DashboardStoreConfig(BaseModel):
    """How `tagpipe dashboard --store bigquery` reads BigQuery (read once, at start-up)."""

    model_config = ConfigDict(extra="forbid")

    project: str = Field(min_length=1, description="the Google Cloud project that holds the dataset and runs the jobs")
    dataset: str = Field("tagpipe", min_length=1)
    location: str | None = Field(None, description="the dataset's location (EU, US, ...): None lets BigQuery find it")
    lookback_days: float = Field(7.0, gt=0, le=90,
                                 description="how far back the debug list and lookups read (partitions scanned)")
    cache_ttl: float = Field(60.0, ge=0, description="seconds an overview aggregate is reused")
    max_bytes_billed: int | None = Field(
        None, gt=0, description="refuse any one query that would bill more (BigQuery's maximum_bytes_billed)")


@dataclass(frozen=True)
class QueryRecord:
    """One BigQuery job the dashboard ran: what, over which tables, and what it cost."""

    name: str
    sql: str
    params: dict[str, Any]
    tables: tuple[str, ...]
    bytes_processed: int
    bytes_billed: int


@dataclass
class Scan:
    """What the queries of one dashboard request scanned."""

    queries: int = 0
    from_cache: int = 0
    bytes_processed: int = 0
    bytes_billed: int = 0

    def add(self, record: QueryRecord) -> None:
        self.queries += 1
        self.bytes_processed += record.bytes_processed
        self.bytes_billed += record.bytes_billed

    @property
    def usd(self) -> float:
        return self.bytes_billed / 2**40 * PRICE_PER_TIB

    def as_dict(self) -> dict[str, Any]:
        text = (f"BigQuery: {self.queries} quer{'y' if self.queries == 1 else 'ies'} scanned"
                f" {human_bytes(self.bytes_processed)} (billed {human_bytes(self.bytes_billed)},"
                f" about ${self.usd:.4f} on demand)")
        if self.from_cache:
            text += f"; {self.from_cache} from the dashboard's cache"
        return {"queries": self.queries, "from_cache": self.from_cache, "bytes_processed": self.bytes_processed,
                "bytes_billed": self.bytes_billed, "usd": round(self.usd, 6), "text": text}


def _seconds(column: str) -> str:
    """A TIMESTAMP column as float unix seconds, the local store's unit."""
    return f"UNIX_MICROS({column}) / 1000000"


# The newest row per key: what an at-least-once writer's repeat collapses to (outcomes: a replayed
# dead letter's new outcome replaces the old one, as the local store deletes the dead_lettered row).
ONE_OUTCOME = "QUALIFY ROW_NUMBER() OVER (PARTITION BY hit_id, event_uid, destination ORDER BY recorded_at DESC) = 1"
IN_WINDOW = "recorded_at >= @since_ts AND recorded_at < @until_ts"


class BigQueryDashboardStore:
    """The monitoring reads of SqliteStore, over BigQuery (see the module doc). Read-only."""

    def __init__(self, config: DashboardStoreConfig, *, client: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._client = client
        self._own_client = client is None
        self._lock = threading.Lock()
        self._cache: dict[tuple, tuple[float, Any]] = {}
        self._local = threading.local()
        self.history: list[QueryRecord] = []  # every job run, newest last (bounded: see _record)

    # -- plumbing
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = bigquery_client(self.config.project, self.config.location)
        return self._client

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
        self._client = None

    def check(self) -> None:
        """Fail at start-up, with the fix, when the credentials or the dataset are not there."""
        try:
            self.client().get_dataset(f"{self.config.project}.{self.config.dataset}")
        except Exception as exc:
            raise StoreUnavailable(
                f"bigquery: cannot read the dataset {self.config.project}.{self.config.dataset}: {exc}"
                " (credentials: `gcloud auth application-default login`; access: BigQuery Data Viewer on the"
                " dataset and Job User on the project)") from exc

    @contextmanager
    def meter(self) -> Iterator[Scan]:
        """Sum what the queries this thread runs inside the block scan (one dashboard request)."""
        scan = Scan()
        outer = getattr(self._local, "scan", None)
        self._local.scan = scan
        try:
            yield scan
        finally:
            self._local.scan = outer

    def _sql(self, sql: str) -> str:
        return sql.replace("{dataset}", f"`{self.config.project}.{self.config.dataset}`")

    def _query(self, name: str, sql: str, tables: Sequence[str], **params: Any) -> list[tuple]:
        from google.cloud import bigquery

        text = self._sql(sql)
        config = bigquery.QueryJobConfig(query_parameters=query_parameters(params),
                                         maximum_bytes_billed=self.config.max_bytes_billed,
                                         labels={"tagpipe": "dashboard", "read": name.replace("_", "-")})
        try:
            job = self.client().query(text, job_config=config)
            rows = [tuple(r.values()) for r in job.result(timeout=60)]
        except Exception as exc:
            raise StoreUnavailable(f"bigquery ({name}): {exc}") from exc
        processed = job.total_bytes_processed
        if processed is None:  # no statistics on this job: ask a dry run (free) what it reads
            processed = self._dry_run(text, config)
        billed = job.total_bytes_billed
        if billed is None:  # on demand: at least 10 MB per table referenced, nothing for a cached result
            billed = 0 if getattr(job, "cache_hit", False) else max(int(processed), MIN_BILLED_PER_TABLE * len(tables))
        self._record(QueryRecord(name, text, params, tuple(tables), int(processed), int(billed)))
        return rows

    def _dry_run(self, text: str, config: Any) -> int:
        from google.cloud import bigquery

        dry = bigquery.QueryJobConfig(query_parameters=config.query_parameters, dry_run=True, use_query_cache=False)
        try:
            return int(self.client().query(text, job_config=dry).total_bytes_processed or 0)
        except Exception:
            return 0  # the figure is for display; a failed estimate must not fail the read

    def _record(self, record: QueryRecord) -> None:
        with self._lock:
            self.history.append(record)
            del self.history[:-500]
        scan = getattr(self._local, "scan", None)
        if scan is not None:
            scan.add(record)

    def _cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """The overview's aggregates: reused for cache_ttl seconds (the key holds the window)."""
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.config.cache_ttl:
            scan = getattr(self._local, "scan", None)
            if scan is not None:
                scan.from_cache += 1
            return hit[1]
        value = compute()
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self.config.cache_ttl}
            self._cache[key] = (now, value)
        return value

    def _window(self, since: float, until: float) -> dict[str, Any]:
        return {"since_ts": bq_timestamp(since), "until_ts": bq_timestamp(until)}

    def _lookback(self) -> datetime:
        return bq_timestamp(self.clock() - self.config.lookback_days * DAY)

    # -- the overview (cached), windows are [since, until)
    def outcome_breakdown(self, since: float, until: float) -> list[tuple]:
        """(destination, outcome, reason, event_name, count, sample detail) of outcomes recorded in the window."""
        sql = ("WITH o AS (SELECT destination, outcome, reason, event_name, detail FROM {dataset}.outcomes"
               f" WHERE {IN_WINDOW} {ONE_OUTCOME})"
               " SELECT destination, outcome, COALESCE(reason, ''), COALESCE(event_name, ''), COUNT(*),"
               " MAX(COALESCE(detail, '')) FROM o GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")  # the local store's order
        return self._cached(("outcome_breakdown", since, until), lambda: self._query(
            "outcome_breakdown", sql, ["outcomes"], **self._window(since, until)))

    def outcome_series(self, since: float, until: float, bucket: float) -> list[tuple]:
        """(bucket index, outcome, count): outcomes per time bucket of `bucket` seconds from `since`."""
        sql = (f"WITH o AS (SELECT outcome, recorded_at FROM {{dataset}}.outcomes WHERE {IN_WINDOW} {ONE_OUTCOME})"
               f" SELECT CAST(FLOOR(({_seconds('recorded_at')} - @since) / @bucket) AS INT64), outcome, COUNT(*)"
               " FROM o GROUP BY 1, 2")
        return self._cached(("outcome_series", since, until, bucket), lambda: self._query(
            "outcome_series", sql, ["outcomes"], since=float(since), bucket=float(bucket), **self._window(since, until)))

    def event_series(self, since: float, until: float, bucket: float) -> list[tuple]:
        """(bucket index, count) of distinct events with an outcome recorded per time bucket."""
        sql = (f"SELECT CAST(FLOOR(({_seconds('recorded_at')} - @since) / @bucket) AS INT64), COUNT(DISTINCT event_uid)"
               f" FROM {{dataset}}.outcomes WHERE {IN_WINDOW} AND event_uid != '*' GROUP BY 1")
        return self._cached(("event_series", since, until, bucket), lambda: self._query(
            "event_series", sql, ["outcomes"], since=float(since), bucket=float(bucket), **self._window(since, until)))

    def hit_series(self, since: float, until: float, bucket: float) -> list[tuple]:
        """(bucket index, count) of hits received (raw_hits) per time bucket."""
        sql = (f"SELECT CAST(FLOOR(({_seconds('received_at')} - @since) / @bucket) AS INT64), COUNT(DISTINCT hit_id)"
               " FROM {dataset}.raw_hits WHERE received_at >= @since_ts AND received_at < @until_ts GROUP BY 1")
        return self._cached(("hit_series", since, until, bucket), lambda: self._query(
            "hit_series", sql, ["raw_hits"], since=float(since), bucket=float(bucket), **self._window(since, until)))

    def hit_count(self, since: float, until: float) -> int:
        sql = ("SELECT COUNT(DISTINCT hit_id) FROM {dataset}.raw_hits"
               " WHERE received_at >= @since_ts AND received_at < @until_ts")
        return self._cached(("hit_count", since, until), lambda: int(self._query(
            "hit_count", sql, ["raw_hits"], **self._window(since, until))[0][0]))

    def last_hit_at(self, until: float) -> float | None:
        """The newest hit before `until`, within lookback_days (older: None, as for a store with no hits)."""
        sql = (f"SELECT MAX({_seconds('received_at')}) FROM {{dataset}}.raw_hits"
               " WHERE received_at >= @since_ts AND received_at < @until_ts")
        since = until - self.config.lookback_days * DAY
        key = ("last_hit_at", math.floor(until / self.config.cache_ttl) if self.config.cache_ttl else until)
        return self._cached(key, lambda: self._query(
            "last_hit_at", sql, ["raw_hits"], **self._window(since, until))[0][0])

    def identifier_counts_by_event(self, since: float, until: float) -> list[tuple]:
        """(destination, event name, comma-joined identifiers, count) of delivered outcomes in the window."""
        sql = ("WITH o AS (SELECT destination, event_name, ARRAY_TO_STRING(identifiers, ',') AS identifiers"
               f" FROM {{dataset}}.outcomes WHERE {IN_WINDOW} AND outcome = 'delivered' {ONE_OUTCOME})"
               " SELECT destination, event_name, identifiers, COUNT(*) FROM o GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
        return self._cached(("identifier_counts_by_event", since, until), lambda: self._query(
            "identifier_counts_by_event", sql, ["outcomes"], **self._window(since, until)))

    # -- the debug view and lookups (not cached: the user asks for them), over lookback_days
    def debug_tokens(self, limit: int = 50) -> list[tuple]:
        """(debug_token, traced hits, first at, last at), most recent first."""
        sql = (f"SELECT debug_token, COUNT(DISTINCT hit_id), MIN({_seconds('recorded_at')}),"
               f" MAX({_seconds('recorded_at')}) FROM {{dataset}}.traces WHERE recorded_at >= @since_ts"
               " GROUP BY debug_token ORDER BY MAX(recorded_at) DESC LIMIT @limit")
        return self._query("debug_tokens", sql, ["traces"], since_ts=self._lookback(), limit=int(limit))

    def debug_trace(self, debug_token: str, max_hits: int = 50) -> dict[str, list[tuple]]:
        """Everything recorded for the most recent `max_hits` hits of one debug token (raw docs: scrub before showing)."""
        sql = ("SELECT hit_id FROM {dataset}.traces WHERE recorded_at >= @since_ts AND debug_token = @token"
               " GROUP BY hit_id ORDER BY MAX(recorded_at) DESC LIMIT @max_hits")
        hit_ids = [row[0] for row in self._query("debug_trace", sql, ["traces"], since_ts=self._lookback(),
                                                 token=debug_token, max_hits=int(max_hits))]
        return self.hit_records(hit_ids, debug_token)

    def find_hits(self, key: str, max_hits: int = 20) -> list[str]:
        """The hits, newest first, that an id names: a hit id, an event uid, an event_id, a transaction /
        order id or a client id, or a hit refused before it had events."""
        sql = ("SELECT hit_id, MAX(event_time) FROM {dataset}.events WHERE event_time >= @since_ts"
               " AND (event_id = @key OR client_id = @key OR hit_id = @key OR event_uid = @key OR transaction_id = @key)"
               " GROUP BY hit_id ORDER BY 2 DESC LIMIT @max_hits")
        since = self._lookback()
        found = [row[0] for row in self._query("find_hits", sql, ["events"], since_ts=since, key=key,
                                               max_hits=int(max_hits))]
        if not found:  # no events: a hit refused at collect or transform is still on record
            sql = ("SELECT hit_id FROM {dataset}.raw_hits WHERE received_at >= @since_ts AND hit_id = @key"
                   " UNION DISTINCT SELECT hit_id FROM {dataset}.failed_events"
                   " WHERE recorded_at >= @since_ts AND hit_id = @key")
            found = [row[0] for row in self._query("find_hits_refused", sql, ["raw_hits", "failed_events"],
                                                   since_ts=since, key=key)]
        return found

    def hit_records(self, hit_ids: list[str], debug_token: str | None = None) -> dict[str, list[tuple]]:
        """What the store holds for these hits: raw hit, events, outcomes, failed events and (for traced
        hits: of `debug_token`, or of any token) the stage traces.

        The wide columns (documents, trace data) are read only from the days around the hits: a first,
        narrow query finds when they were received (hit_id and received_at only), and the others are bounded
        by that, less a margin for clocks, instead of by the whole look-back."""
        if not hit_ids:
            return {"hit_ids": [], "traces": [], "raw_hits": [], "events": [], "outcomes": [], "failed": []}
        lookback = self._lookback()
        ids = list(hit_ids)
        (first, last), = self._query(
            "hit_records_span", f"SELECT MIN({_seconds('received_at')}), MAX({_seconds('received_at')})"
            " FROM {dataset}.raw_hits WHERE received_at >= @since_ts AND hit_id IN UNNEST(@ids)", ["raw_hits"],
            since_ts=lookback, ids=ids)  # fmt: skip
        if first is None:  # raw hits expire first (short retention): fall back to the whole look-back
            recorded_from, events_from, events_until = lookback, lookback, bq_timestamp(self.clock() + DAY)
        else:
            recorded_from = max(lookback, bq_timestamp(first - RECORD_SKEW))
            events_from, events_until = max(lookback, bq_timestamp(first - EVENT_SKEW)), bq_timestamp(last + EVENT_SKEW)
        token_clause = "debug_token = @token AND " if debug_token else ""
        traces = self._query(
            "hit_records_traces", f"SELECT hit_id, stage, {_seconds('recorded_at')}, data FROM {{dataset}}.traces"
            f" WHERE recorded_at >= @since_ts AND {token_clause}hit_id IN UNNEST(@ids)"
            " QUALIFY ROW_NUMBER() OVER (PARTITION BY debug_token, hit_id, stage, recorded_at) = 1"
            " ORDER BY recorded_at", ["traces"],
            since_ts=recorded_from, ids=ids, **({"token": debug_token} if debug_token else {}))  # fmt: skip
        failed = self._query(
            "hit_records_failed", "SELECT hit_id, stage, destination, error_code, message,"
            f" {_seconds('recorded_at')} FROM {{dataset}}.failed_events"
            " WHERE recorded_at >= @since_ts AND hit_id IN UNNEST(@ids)"
            " QUALIFY ROW_NUMBER() OVER (PARTITION BY hit_id, stage, destination, error_code, recorded_at) = 1"
            " ORDER BY recorded_at", ["failed_events"], since_ts=recorded_from, ids=ids)  # fmt: skip
        raw_hits = self._query(
            "hit_records_raw_hits", f"SELECT hit_id, {_seconds('received_at')}, doc FROM {{dataset}}.raw_hits"
            " WHERE received_at >= @since_ts AND hit_id IN UNNEST(@ids)"
            " QUALIFY ROW_NUMBER() OVER (PARTITION BY hit_id ORDER BY received_at) = 1", ["raw_hits"],
            since_ts=recorded_from, ids=ids)  # fmt: skip
        events = self._query(
            "hit_records_events", "SELECT hit_id, event_uid, doc FROM {dataset}.events"
            " WHERE event_time >= @since_ts AND event_time < @until_ts AND hit_id IN UNNEST(@ids)"
            " QUALIFY ROW_NUMBER() OVER (PARTITION BY event_uid ORDER BY event_time) = 1", ["events"],
            since_ts=events_from, until_ts=events_until, ids=ids)  # fmt: skip
        outcomes = self._query(
            "hit_records_outcomes", "SELECT hit_id, event_uid, destination, outcome, reason, detail, event_name,"
            f" ARRAY_TO_STRING(identifiers, ','), {_seconds('recorded_at')} FROM {{dataset}}.outcomes"
            f" WHERE recorded_at >= @since_ts AND hit_id IN UNNEST(@ids) {ONE_OUTCOME} ORDER BY recorded_at",
            ["outcomes"], since_ts=recorded_from, ids=ids)  # fmt: skip
        return {"hit_ids": [(h,) for h in ids], "traces": traces, "failed": failed, "raw_hits": raw_hits,
                "events": events, "outcomes": outcomes}


__all__ = ["BigQueryDashboardStore", "DashboardStoreConfig", "QueryRecord", "Scan", "bigquery_client"]
