"""The read side of `tagpipe replay` and `tagpipe backfill` on Google Cloud: parameterised BigQuery
queries, each bounded by the partition column and dry-run first, so the operator sees (and may
refuse) the bytes it will bill before it runs.

    replay     dead_letters (partition publish_time): what the dead-letter topic's archive
               subscription wrote (write_metadata: body, attributes), from the deliver
               subscription only, newest copy per (hit, event, destination)
    backfill   events (partition event_time, clustered by name): canonical events of the range
    both       minus what is already done, by an anti-join on outcomes (partition recorded_at,
               clustered by destination, outcome), read from the window's start on

The anti-join spares republishing; it is not what keeps a replay idempotent. deliver's dedup on
(destination, vendor event name:event_id) in Firestore is, so a row that lands in outcomes late (the
BigQuery subscription streams it) costs one message that deliver acks without sending.

Replay also removes the Firestore outcome markers that say `dead_lettered` for the pairs it
requeues: outcomes are recorded at most once per (hit, event, destination), and the new attempt's
outcome must be recorded (as the local store deletes the dead_lettered row).

BIGQUERY_EMULATOR_HOST points the client at an emulator (anonymous credentials), as
FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST do for the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tagpipe.errors import StoreUnavailable
from tagpipe.models import DeliveryTask
from tagpipe.settings import Settings
from tagpipe.storage.base import Confirm, Selection
from tagpipe.storage.bigquery import OUTCOMES, BigQueryStore, doc_id

# On-demand analysis price, https://cloud.google.com/bigquery/pricing#on_demand_pricing (USD per TiB;
# at least 10 MB billed per table a query references, the first TiB of a month is free).
PRICE_PER_TIB = 6.25
MIN_BILLED_PER_TABLE = 10 * 2**20
PAGE_SIZE = 500

DEAD_LETTERS_SQL = """
WITH letters AS (
  SELECT SAFE_CONVERT_BYTES_TO_STRING(data) AS body, publish_time
  FROM {dataset}.dead_letters
  WHERE publish_time >= @since AND publish_time < @until
    AND (JSON_VALUE(attributes, '$.CloudPubSubDeadLetterSourceSubscription') IN ('deliver', @source)
         OR STARTS_WITH(JSON_VALUE(attributes, '$.CloudPubSubDeadLetterSourceSubscription'), CONCAT(@source, '-')))
    AND (@destination IS NULL OR JSON_VALUE(attributes, '$.destination') = @destination)
), tasks AS (
  SELECT body, publish_time, JSON_VALUE(body, '$.hit_id') AS hit_id,
         JSON_VALUE(body, '$.event_uid') AS event_uid, JSON_VALUE(body, '$.destination') AS destination
  FROM letters
)
SELECT t.body FROM tasks AS t
WHERE NOT EXISTS (
  SELECT 1 FROM {dataset}.outcomes AS o
  WHERE o.recorded_at >= @since AND o.outcome != 'dead_lettered'
    AND o.hit_id = t.hit_id AND o.event_uid = t.event_uid AND o.destination = t.destination
)
QUALIFY ROW_NUMBER() OVER (PARTITION BY t.hit_id, t.event_uid, t.destination ORDER BY t.publish_time DESC) = 1
ORDER BY t.publish_time
"""

# An event's outcomes are recorded after it happened; a day's margin covers clients whose clocks run
# ahead. Tags give a task the event_uid "<event_uid>#<tag>" (tagpipe.tagging.tag_event_uid).
EVENTS_SQL = """
SELECT e.doc FROM {dataset}.events AS e
WHERE e.event_time >= @since AND e.event_time < @until
  AND NOT EXISTS (
    SELECT 1 FROM {dataset}.outcomes AS o
    WHERE o.recorded_at >= TIMESTAMP_SUB(@since, INTERVAL 1 DAY)
      AND o.destination = @destination AND o.outcome = 'delivered' AND o.hit_id = e.hit_id
      AND (o.event_uid = e.event_uid OR STARTS_WITH(o.event_uid, CONCAT(e.event_uid, '#')))
  )
QUALIFY ROW_NUMBER() OVER (PARTITION BY e.event_uid ORDER BY e.event_time) = 1
ORDER BY e.event_time
"""


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def scan_cost(n: int, tables: int = 1) -> float:
    """USD an on-demand query that processes n bytes is billed (before the monthly free TiB)."""
    return max(n, MIN_BILLED_PER_TABLE * tables) / 2**40 * PRICE_PER_TIB


def bq_timestamp(seconds: float) -> datetime:
    """Unix seconds as a TIMESTAMP parameter, clamped to BigQuery's range (the CLI's "until" defaults far
    in the future)."""
    return datetime.fromtimestamp(min(max(seconds, 0.0), 253_402_300_799.0), tz=UTC)


def bigquery_client(project: str, location: str | None = None) -> Any:
    """A BigQuery client on the caller's credentials, or on the emulator BIGQUERY_EMULATOR_HOST names."""
    from google.cloud import bigquery

    host = Settings.load().bigquery_emulator_host
    if host:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        endpoint = host if host.startswith("http") else f"http://{host}"
        return bigquery.Client(project=project, credentials=AnonymousCredentials(), location=location,
                               client_options=ClientOptions(api_endpoint=endpoint))
    return bigquery.Client(project=project, location=location)


def query_parameters(params: dict[str, Any]) -> list:
    """Named query parameters, typed by their Python values (never SQL text: lookups are user input)."""
    from google.cloud import bigquery

    out: list = []
    for name, value in params.items():
        if isinstance(value, datetime):
            out.append(bigquery.ScalarQueryParameter(name, "TIMESTAMP", value))
        elif isinstance(value, list):
            out.append(bigquery.ArrayQueryParameter(name, "STRING", [str(v) for v in value]))
        elif isinstance(value, bool):
            out.append(bigquery.ScalarQueryParameter(name, "BOOL", value))
        elif isinstance(value, int):
            out.append(bigquery.ScalarQueryParameter(name, "INT64", value))
        elif isinstance(value, float):
            out.append(bigquery.ScalarQueryParameter(name, "FLOAT64", value))
        else:
            out.append(bigquery.ScalarQueryParameter(name, "STRING", None if value is None else str(value)))
    return out


class BigQueryReplaySource:
    """Where replay and backfill read on Google Cloud (see tagpipe.ops.replay for the local twin)."""

    def __init__(self, store: BigQueryStore, confirm: Confirm | None = None) -> None:
        self.store = store
        self.confirm = confirm
        self._client: Any = None
        self._own = False

    def client(self):
        if self._client is None:
            if Settings.load().bigquery_emulator_host:
                self._client = bigquery_client(self.store.project)
                self._own = True
            else:
                self._client = self.store.client()
        return self._client

    def close(self) -> None:
        if self._own and self._client is not None:
            self._client.close()
        self._client = None

    # -- queries
    def estimate(self, sql: str, params: Sequence[Any]) -> int:
        """Bytes the query would process (a dry run: free, nothing read)."""
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(query_parameters=list(params), dry_run=True, use_query_cache=False)
        try:
            job = self.client().query(self._sql(sql), job_config=config)
        except Exception as exc:
            raise StoreUnavailable(f"bigquery dry run: {exc}") from exc
        return int(job.total_bytes_processed or 0)

    def select(self, what: str, sql: str, params: Sequence[Any]) -> Selection:
        from google.cloud import bigquery

        scanned = self.estimate(sql, params)
        if self.confirm is not None and not self.confirm(what, scanned):
            raise SystemExit(f"{what}: not run (the query would scan {human_bytes(scanned)})")
        config = bigquery.QueryJobConfig(query_parameters=list(params))
        try:
            rows = self.client().query(self._sql(sql), job_config=config).result(page_size=PAGE_SIZE, timeout=300)
        except Exception as exc:
            raise StoreUnavailable(f"bigquery: {exc}") from exc
        return Selection(rows.total_rows or 0, (tuple(r.values()) for r in rows))

    def _sql(self, sql: str) -> str:
        return sql.replace("{dataset}", f"`{self.store.project}.{self.store.dataset}`")

    # -- what replay and backfill need
    def dead_letters(self, destination: str | None, since: float, until: float) -> Selection:
        """Dead-lettered delivery tasks not delivered since: rows of (row key, task JSON)."""
        params = query_parameters({"since": bq_timestamp(since), "until": bq_timestamp(until), "destination": destination,
                                 "source": f"{self.store.prefix}-deliver"})
        selected = self.select("replay: dead_letters", DEAD_LETTERS_SQL, params)
        return Selection(selected.total, ((None, body) for (body,) in selected.rows))

    def events(self, destination: str, since: float, until: float) -> Selection:
        """Canonical events of [since, until) not yet delivered to destination: rows of (doc,)."""
        params = query_parameters({"since": bq_timestamp(since), "until": bq_timestamp(until), "destination": destination})
        return self.select("backfill: events", EVENTS_SQL, params)

    def requeue(self, rows: Sequence[tuple], tasks: Sequence[DeliveryTask]) -> None:
        """Before republishing: let the new attempt's outcome be recorded (see the module doc)."""
        ids = list(dict.fromkeys(doc_id(t.hit_id, t.event_uid, t.destination) for t in tasks))
        if not ids:
            return
        index = self.store.index
        found = index.get(OUTCOMES, ids)
        stale = [(OUTCOMES, i) for i, fields in found.items() if fields.get("outcome") == "dead_lettered"]
        if stale:
            index.delete(stale)


__all__ = ["BigQueryReplaySource", "PRICE_PER_TIB", "human_bytes", "scan_cost"]
