"""The Store on Google Cloud: BigQuery for the records, Firestore for the keyed idempotency reads.

Writes never touch BigQuery from a function. Each record kind has a Pub/Sub topic
`{prefix}-records-<table>`; a BigQuery subscription on it (Terraform, `use_table_schema`) streams the
rows into the table through the Storage Write API, in batches, with its own retries and a
dead-letter topic for a row BigQuery refuses. The function only publishes (one batched publish per
call, futures resolved), which it already does for the pipeline itself: no BigQuery client on the
hot path, no per-event DML, no streaming-insert quota. Pub/Sub's BigQuery subscriptions deliver
at least once: the `*_unique` views drop the rare duplicate row.

Two things need a fast keyed read-or-create, which BigQuery cannot give per batch (a query takes
~1 s and bills at least 10 MB): "was this outcome already recorded" (`record_outcomes` returns
per outcome whether it was new) and "was this dedup key already delivered to this destination"
(`delivered_keys`). Both live in Firestore (a database of their own, `TAGPIPE_FIRESTORE_DATABASE`),
spoken to over its REST API with httpx: one `batchWrite` with `exists=false` preconditions creates
the markers and tells, per document, whether it already existed; one `batchGet` reads the
delivered keys. A delivered outcome's marker is its delivered key's document (one create per delivery, not
two); the events outside the [delivery] dedup scope have only the outcome marker and no read. Documents
expire through a Firestore TTL policy on `expire_at` (each expiry is a billed delete).

Table schemas live once, as JSON, in this package (bigquery_schemas/tables/*.json and tables.json,
shipped in the wheel and the function zips; Terraform's modules/bigquery creates the tables from them; `row()` builds every row from them and refuses a row that does not fit).
`COLUMNS` maps each column to the model attribute it comes from; tests check the mapping against
the models and the schemas.

Environment (see `from_env`): TAGPIPE_GCP_PROJECT, TAGPIPE_BQ_DATASET (default tagpipe),
TAGPIPE_TOPIC_PREFIX (default tagpipe), TAGPIPE_FIRESTORE_DATABASE (default "<prefix>-keys"),
TAGPIPE_DEDUP_TTL_DAYS (default 35). FIRESTORE_EMULATOR_HOST points the index at the emulator.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tagpipe.errors import ConfigError, StoreUnavailable
from tagpipe.models import Event, FailedEvent, Outcome, OutcomeKind, RawHit
from tagpipe.settings import Settings
from tagpipe.storage.base import DeliveredKey, Store

# --------------------------------------------------------------------------- schemas

SCHEMAS = Path(__file__).resolve().parent / "bigquery_schemas"

# table -> {column: attribute path on the model ("client.client_id"), or "@json" for the whole
# model as JSON}. Trace rows are not a model: their columns are given directly.
COLUMNS: dict[str, dict[str, str]] = {
    "raw_hits": {
        "hit_id": "hit_id",
        "received_at": "received_at",
        "source": "source",
        "method": "method",
        "path": "path",
        "debug_token": "debug_token",
        "doc": "@json",
    },
    "events": {
        "event_uid": "event_uid",
        "hit_id": "hit_id",
        "event_id": "event_id",
        "name": "name",
        "event_time": "timestamp",
        "source": "source",
        "measurement_id": "measurement_id",
        "client_id": "client.client_id",
        "user_id": "client.user_id",
        "email_sha256": "user_data.email",  # the caller has replaced it by its hash (see Store)
        "transaction_id": "ecommerce.transaction_id",
        "value": "ecommerce.value",
        "currency": "ecommerce.currency",
        "doc": "@json",
    },
    "outcomes": {
        "hit_id": "hit_id",
        "event_uid": "event_uid",
        "destination": "destination",
        "outcome": "outcome",
        "reason": "reason",
        "detail": "detail",
        "event_name": "event_name",
        "identifiers": "identifiers",
        "recorded_at": "at",
    },
    "failed_events": {
        "schema": "schema_",
        "stage": "stage",
        "hit_id": "hit_id",
        "event_uid": "event_uid",
        "destination": "destination",
        "error_code": "error_code",
        "message": "message",
        "payload": "payload",
        "recorded_at": "at",
    },
}
MODELS: dict[str, type[BaseModel]] = {
    "raw_hits": RawHit,
    "events": Event,
    "outcomes": Outcome,
    "failed_events": FailedEvent,
}


def schema_dir() -> Path:
    return SCHEMAS / "tables"


@cache
def _load_schema(directory: str, table: str) -> tuple[dict[str, Any], ...]:
    path = Path(directory) / f"{table}.json"
    try:
        return tuple(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            "storage.bigquery",
            f"cannot read the BigQuery schema {path}: {exc}",
            fix="reinstall tagpipe: the schemas ship inside the package (tagpipe/storage/bigquery_schemas)",
        ) from exc


def schema(table: str) -> tuple[dict[str, Any], ...]:
    """The BigQuery schema of a table, as the JSON list Terraform reads."""
    return _load_schema(str(schema_dir()), table)


@cache
def tables() -> dict[str, dict[str, Any]]:
    """Per table: its records topic (None: written by Pub/Sub itself), partition and clustering."""
    return json.loads((schema_dir().parent / "tables.json").read_text())


def record_topic(table: str) -> str:
    return f"records-{table.replace('_', '-')}"


def iso_timestamp(seconds: float) -> str:
    """A TIMESTAMP value every BigQuery write path reads the same way (a bare number does not:
    tabledata.insertAll reads it as seconds, the Storage Write API as microseconds)."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _attr(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
        if obj is None:
            return None
    return obj


def _convert(value: Any, field: Mapping[str, Any]) -> Any:
    if value is None:
        return [] if field.get("mode") == "REPEATED" else None
    kind = field["type"]
    if field.get("mode") == "REPEATED":
        return [_convert(v, {**field, "mode": "NULLABLE"}) for v in value]
    if isinstance(value, Enum):
        value = value.value
    if kind == "TIMESTAMP":
        return iso_timestamp(float(value))
    if kind in ("FLOAT", "FLOAT64"):
        return float(value)
    if kind in ("INTEGER", "INT64"):
        return int(value)
    if kind in ("BOOLEAN", "BOOL"):
        return bool(value)
    if kind == "STRING":
        return value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    raise TypeError(f"column {field['name']}: type {kind} is not written by tagpipe")


def row(table: str, obj: Any = None, **columns: Any) -> dict[str, Any]:
    """One row of `table`, shaped by its schema: from a model through COLUMNS, or from columns."""
    mapping = COLUMNS.get(table)
    out: dict[str, Any] = {}
    for field in schema(table):
        name = field["name"]
        if obj is not None and mapping is not None:
            path = mapping[name]
            value = obj.compact_json(by_alias=True) if path == "@json" else _attr(obj, path)
        else:
            value = columns.get(name)
        value = _convert(value, field)
        if value is None and field.get("mode") == "REQUIRED":
            raise ValueError(f"{table}.{name} is REQUIRED but the record has no value for it")
        out[name] = value
    return out


# --------------------------------------------------------------------------- Firestore index

FIRESTORE_URL = "https://firestore.googleapis.com/v1"
FIRESTORE_SCOPE = "https://www.googleapis.com/auth/datastore"
BATCH_WRITE_MAX = 500  # Firestore's limit per batchWrite
BATCH_GET_MAX = 300
ALREADY_EXISTS = 6
_RETRY_STATUS = (429, 500, 502, 503, 504)


class FirestoreIndex:
    """Create-if-absent and batch-get on one Firestore database, over REST (httpx).

    Credentials: the emulator needs none; on Cloud Functions the runtime's service account
    (google-auth reads the metadata server); elsewhere application-default credentials.
    """

    def __init__(
        self,
        project: str,
        database: str,
        *,
        emulator_host: str | None = None,
        timeout: float = 5.0,
        client: Any = None,
        credentials: Any = None,
    ) -> None:
        self.project, self.database = project, database
        emulator_host = (
            emulator_host if emulator_host is not None else Settings.load().firestore_emulator_host
        )
        self.emulator = bool(emulator_host)
        base = f"http://{emulator_host}/v1" if emulator_host else FIRESTORE_URL
        self.root = f"projects/{project}/databases/{database}/documents"
        self.url = f"{base}/{self.root}"
        self.timeout = timeout
        self._client = client
        self._credentials = credentials
        self._lock = threading.Lock()

    def _http(self):
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import httpx

                    self._client = httpx.Client(
                        timeout=httpx.Timeout(self.timeout, connect=2.0),
                        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
                    )
        return self._client

    def _token(self) -> str:
        if self.emulator:
            return "owner"  # the emulator's admin token: bypasses security rules
        with self._lock:
            if self._credentials is None:
                import google.auth

                self._credentials, _ = google.auth.default(scopes=[FIRESTORE_SCOPE])
            if not self._credentials.valid:
                import google.auth.transport.requests

                self._credentials.refresh(google.auth.transport.requests.Request())
            return self._credentials.token

    def _post(self, verb: str, body: dict[str, Any]) -> Any:
        import httpx

        last: Exception | None = None
        for attempt in range(3):
            try:
                response = self._http().post(
                    f"{self.url}:{verb}", json=body, headers={"Authorization": f"Bearer {self._token()}"}
                )
            except httpx.HTTPError as exc:
                last = exc
            except Exception as exc:  # credentials could not be refreshed
                raise StoreUnavailable(f"firestore: no credentials: {exc}") from exc
            else:
                if response.status_code == 200:
                    return response.json()
                last = StoreUnavailable(
                    f"firestore {verb}: HTTP {response.status_code} {response.text[:300]}"
                )
                if response.status_code not in _RETRY_STATUS:
                    break
            time.sleep(0.05 * 2**attempt)
        if isinstance(last, StoreUnavailable):
            raise last
        raise StoreUnavailable(f"firestore {verb}: {last}") from last

    def doc_name(self, collection: str, doc_id: str) -> str:
        return f"{self.root}/{collection}/{doc_id}"

    def create(self, docs: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[bool]:
        """Create (collection, id, fields) documents that do not exist yet; True where created."""
        created: list[bool] = []
        for start in range(0, len(docs), BATCH_WRITE_MAX):
            chunk = docs[start : start + BATCH_WRITE_MAX]
            writes = [
                {
                    "update": {"name": self.doc_name(c, i), "fields": _fields(f)},
                    "currentDocument": {"exists": False},
                }
                for c, i, f in chunk
            ]
            result = self._post("batchWrite", {"writes": writes})
            statuses = result.get("status") or [{}] * len(chunk)
            for status in statuses:
                code = status.get("code", 0)
                if code in (0, None):
                    created.append(True)
                elif code == ALREADY_EXISTS or code == 9:  # 9: FAILED_PRECONDITION, same meaning
                    created.append(False)
                else:
                    raise StoreUnavailable(f"firestore batchWrite: {status}")
        return created

    def get(self, collection: str, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The documents that exist, by id -> their fields as plain values."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(doc_ids), BATCH_GET_MAX):
            chunk = doc_ids[start : start + BATCH_GET_MAX]
            result = self._post("batchGet", {"documents": [self.doc_name(collection, i) for i in chunk]})
            for item in result:
                doc = item.get("found")
                if doc:
                    found[doc["name"].rpartition("/")[2]] = _values(doc.get("fields", {}))
        return found

    def delete(self, docs: Sequence[tuple[str, str]]) -> None:
        for start in range(0, len(docs), BATCH_WRITE_MAX):
            chunk = docs[start : start + BATCH_WRITE_MAX]
            self._post("batchWrite", {"writes": [{"delete": self.doc_name(c, i)} for c, i in chunk]})

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _fields(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, datetime):
            out[key] = {"timestampValue": value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        elif value is None:
            out[key] = {"nullValue": None}
        else:
            out[key] = {"stringValue": str(value)}
    return out


def _values(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: next(iter(v.values())) if v else None for k, v in fields.items()}


def doc_id(*parts: str) -> str:
    """A Firestore document id for a composite key: fixed length, no '/', evenly spread."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------- the store

OUTCOMES = "outcomes"  # Firestore collections
DELIVERED = "delivered"
UNMARKED = -1  # an outcome recorded without a Firestore marker (exact_outcomes is False for its destination)


class BigQueryStore(Store):
    def __init__(
        self,
        project: str,
        dataset: str = "tagpipe",
        prefix: str = "tagpipe",
        *,
        bus: Any = None,
        index: FirestoreIndex | None = None,
        firestore_database: str | None = None,
        dedup_ttl_days: float = 35.0,
        traces: bool = True,
        bigquery_client: Any = None,
        exact_outcomes: Callable[[str], bool] = lambda destination: True,
    ) -> None:
        if not project:
            raise ConfigError(
                "TAGPIPE_GCP_PROJECT", "no Google Cloud project id given", fix="set TAGPIPE_GCP_PROJECT"
            )
        self.project, self.dataset, self.prefix = project, dataset, prefix
        self._bus = bus
        self._index = index
        self.firestore_database = firestore_database or f"{prefix}-keys"
        self.dedup_ttl = dedup_ttl_days * 86400
        self.traces = traces
        self._bq = bigquery_client
        self.exact_outcomes = exact_outcomes
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> BigQueryStore:
        return cls.from_settings(Settings.load(environ), **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> BigQueryStore:
        return cls(settings.gcp_project, settings.bq_dataset, settings.topic_prefix,
                   firestore_database=settings.firestore_database, dedup_ttl_days=settings.dedup_ttl_days, **kwargs)

    # -- parts, built lazily and once
    @property
    def bus(self):
        if self._bus is None:
            with self._lock:
                if self._bus is None:
                    from tagpipe.transport.pubsub import PubSubBus

                    self._bus = PubSubBus(self.project, self.prefix)
        return self._bus

    @property
    def index(self) -> FirestoreIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = FirestoreIndex(self.project, self.firestore_database)
        return self._index

    def _publish(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            items = [(json.dumps(r, separators=(",", ":")).encode(), None) for r in rows]
            self.bus.publish_many(record_topic(table), items)

    # -- writes
    def record_hits(self, hits: Sequence[RawHit]) -> None:
        self._publish("raw_hits", [row("raw_hits", h) for h in hits])

    def record_events(self, events: Sequence[Event]) -> None:
        self._publish("events", [row("events", e) for e in events])

    def record_outcomes(
        self, outcomes: Sequence[Outcome], delivered: Sequence[DeliveredKey] = ()
    ) -> list[bool]:
        """One batchWrite of exists=false creates. A delivered outcome that comes with its delivered key
        writes only the delivered marker, which carries the outcome too: one document (a write and later a
        TTL delete) per delivery instead of two. Its create fails only when the key was delivered before:
        by this same event (a repeat: not new), or by another event with the same event_id sent at the same
        time (rare), which then gets an outcome marker of its own.

        Where `exact_outcomes(destination)` is False (the [delivery] dedup scope of that destination is not
        "all"), outcomes that carry no delivered key get no marker at all: the outcomes table is at least once
        already (a Pub/Sub BigQuery subscription can write a row twice) and its readers collapse repeats
        (the outcomes_unique view, outcome_counts), so a marker per browse event would only buy exactness
        against rare Pub/Sub redeliveries, at a Firestore write and TTL delete per delivery."""
        expire = datetime.fromtimestamp(time.time() + self.dedup_ttl, tz=UTC)
        marks = {(d.destination, d.event_uid): d for d in delivered}
        seen: set[str] = set()
        docs: list[tuple[str, str, dict[str, Any]]] = []
        # per outcome: its index in docs, None for a repeat within the call, UNMARKED for no marker
        slots: list[int | None] = []
        for o in outcomes:
            key = doc_id(o.hit_id, o.event_uid, o.destination)
            if key in seen:
                slots.append(None)
                continue
            seen.add(key)
            d = marks.get((o.destination, o.event_uid)) if o.outcome is OutcomeKind.DELIVERED else None
            if d is not None and doc_id(d.destination, d.dedup_key) not in seen:
                slots.append(len(docs))
                seen.add(doc_id(d.destination, d.dedup_key))
                docs.append((DELIVERED, doc_id(d.destination, d.dedup_key), self._delivered_fields(d, expire, o)))
            elif self.exact_outcomes(o.destination):
                slots.append(len(docs))
                docs.append((OUTCOMES, key, self._outcome_fields(o, expire)))
            else:
                slots.append(UNMARKED)
        for d in delivered:
            key = doc_id(d.destination, d.dedup_key)
            if key not in seen:
                seen.add(key)
                docs.append((DELIVERED, key, self._delivered_fields(d, expire)))
        created = self.index.create(docs) if docs else []
        fresh = [slot == UNMARKED or (slot is not None and created[slot]) for slot in slots]
        # a delivered marker that already existed: the same event again, or another one with its event_id
        taken = [(i, slot) for i, slot in enumerate(slots)
                 if slot not in (None, UNMARKED) and not created[slot] and docs[slot][0] == DELIVERED]
        if taken:
            found = self.index.get(DELIVERED, [docs[slot][1] for _, slot in taken])
            other = [(i, outcomes[i]) for i, slot in taken
                     if found.get(docs[slot][1], {}).get("event_uid") != outcomes[i].event_uid]
            if other:
                extra = [(OUTCOMES, doc_id(o.hit_id, o.event_uid, o.destination), self._outcome_fields(o, expire))
                         for _, o in other]
                for (i, _), doc, is_new in zip(other, extra, self.index.create(extra), strict=True):
                    fresh[i] = is_new
                    slots[i] = len(docs)
                    docs.append(doc)
                    created.append(is_new)
        new_rows = [row("outcomes", o) for o, is_new in zip(outcomes, fresh, strict=True) if is_new]
        try:
            self._publish("outcomes", new_rows)
        except StoreUnavailable:
            # undo the markers that stand for these outcomes so the caller's retry records them again: the
            # outcome markers, and the delivered markers that carry a delivered outcome (the retry then
            # sends the event again, which the vendor dedups on event_id, instead of acking it unrecorded)
            undo = [docs[slot][:2] for slot in slots if slot not in (None, UNMARKED) and created[slot]]
            try:
                self.index.delete(undo)
            except StoreUnavailable:
                pass
            raise
        return fresh

    @staticmethod
    def _outcome_fields(o: Outcome, expire: datetime) -> dict[str, Any]:
        return {"hit_id": o.hit_id, "event_uid": o.event_uid, "destination": o.destination,
                "outcome": o.outcome.value, "expire_at": expire}

    @staticmethod
    def _delivered_fields(d: DeliveredKey, expire: datetime, o: Outcome | None = None) -> dict[str, Any]:
        fields = {"destination": d.destination, "dedup_key": d.dedup_key, "event_uid": d.event_uid,
                  "expire_at": expire}
        if o is not None:  # this marker stands for the delivered outcome too
            fields.update(hit_id=o.hit_id, outcome=o.outcome.value)
        return fields

    def record_failures(self, failures: Sequence[FailedEvent]) -> None:
        self._publish("failed_events", [row("failed_events", f) for f in failures])

    def delivered_keys(self, destination: str, dedup_keys: Iterable[str]) -> dict[str, str]:
        keys = list(dict.fromkeys(dedup_keys))
        if not keys:
            return {}
        by_id = {doc_id(destination, k): k for k in keys}
        found = self.index.get(DELIVERED, list(by_id))
        return {by_id[i]: fields.get("event_uid", "") for i, fields in found.items() if i in by_id}

    def record_trace(self, debug_token: str, hit_id: str, stage: str, data: dict[str, Any]) -> None:
        if self.traces:
            self._publish(
                "traces",
                [
                    row(
                        "traces",
                        debug_token=debug_token,
                        hit_id=hit_id,
                        stage=stage,
                        recorded_at=time.time(),
                        data=json.dumps(data, default=str, separators=(",", ":")),
                    )
                ],
            )

    # -- reads (CLI, dashboards, tests): BigQuery, off the hot path
    def client(self):
        if self._bq is None:
            with self._lock:
                if self._bq is None:
                    from google.cloud import bigquery

                    self._bq = bigquery.Client(project=self.project)
        return self._bq

    def table_id(self, table: str) -> str:
        return f"{self.project}.{self.dataset}.{table}"

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Run SQL in which `{dataset}` stands for the fully qualified dataset."""
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter(k, _bq_type(v), v) for k, v in (params or {}).items()
            ]
        )
        try:
            job = self.client().query(
                sql.replace("{dataset}", f"`{self.project}.{self.dataset}`"), job_config=config
            )
            return [tuple(r.values()) for r in job.result(timeout=60)]
        except Exception as exc:
            raise StoreUnavailable(f"bigquery: {exc}") from exc

    def outcome_counts(self, hours: float = 24.0) -> dict[tuple[str, str], int]:
        """Outcomes of the last `hours`, one per key (the partition filter sits inside the dedup,
        so BigQuery scans only those days; the outcomes_unique view cannot prune partitions)."""
        since = iso_timestamp(time.time() - hours * 3600)
        rows = self.query(
            "SELECT destination, outcome, COUNT(*) FROM ("
            " SELECT destination, outcome,"
            " ROW_NUMBER() OVER (PARTITION BY hit_id, event_uid, destination ORDER BY recorded_at DESC) AS n"
            " FROM {dataset}.outcomes WHERE recorded_at >= TIMESTAMP(@since)"
            ") WHERE n = 1 GROUP BY 1, 2",
            {"since": since},
        )
        return {(d, o): n for d, o, n in rows}

    def create_tables(self, retention_days: Mapping[str, float] | None = None) -> None:
        """Create the dataset and tables as Terraform does (emulator, tests, a scratch project)."""
        from google.cloud import bigquery

        client = self.client()
        client.create_dataset(bigquery.Dataset(f"{self.project}.{self.dataset}"), exists_ok=True)
        for name, spec in tables().items():
            table = bigquery.Table(
                self.table_id(name), schema=[bigquery.SchemaField.from_api_repr(f) for f in schema(name)]
            )
            days = (retention_days or {}).get(name)
            table.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY,
                field=spec["partition_field"],
                expiration_ms=int(days * 86_400_000) if days else None,
            )
            table.clustering_fields = spec["clustering"]
            client.create_table(table, exists_ok=True)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        if self._bq is not None:
            self._bq.close()
            self._bq = None


def _bq_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    return "STRING"


__all__ = [
    "BigQueryStore",
    "COLUMNS",
    "FirestoreIndex",
    "MODELS",
    "doc_id",
    "iso_timestamp",
    "record_topic",
    "row",
    "schema",
    "tables",
]
