"""The embedded store: one SQLite file (WAL) beside the local queue.

Queries for the dashboard, alerts and the debug view read the same file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tagpipe.errors import StoreUnavailable
from tagpipe.models import DeliveryTask, Event, FailedEvent, Outcome, RawHit
from tagpipe.storage.base import DeliveredKey, InflightClaim, Selection, Store
from tagpipe.transport.local import connect, write_transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS raw_hits (
  hit_id TEXT PRIMARY KEY, received_at REAL NOT NULL, source TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  event_uid TEXT PRIMARY KEY, hit_id TEXT NOT NULL, event_id TEXT NOT NULL, name TEXT NOT NULL,
  ts REAL NOT NULL, source TEXT NOT NULL, client_id TEXT, user_id TEXT, email_sha256 TEXT,
  doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id);
CREATE INDEX IF NOT EXISTS events_email ON events (email_sha256);
CREATE INDEX IF NOT EXISTS events_event_id ON events (event_id);
CREATE INDEX IF NOT EXISTS events_client ON events (client_id);
CREATE INDEX IF NOT EXISTS events_transaction ON events (json_extract(doc, '$.ecommerce.transaction_id'));
CREATE TABLE IF NOT EXISTS outcomes (
  hit_id TEXT NOT NULL, event_uid TEXT NOT NULL, destination TEXT NOT NULL,
  outcome TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL, event_name TEXT,
  identifiers TEXT NOT NULL DEFAULT '', at REAL NOT NULL,
  PRIMARY KEY (hit_id, event_uid, destination)
);
CREATE INDEX IF NOT EXISTS outcomes_at ON outcomes (at);
CREATE TABLE IF NOT EXISTS failed_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, schema TEXT NOT NULL, stage TEXT NOT NULL,
  hit_id TEXT NOT NULL, event_uid TEXT, destination TEXT, error_code TEXT NOT NULL,
  message TEXT NOT NULL, payload TEXT NOT NULL, at REAL NOT NULL, replayed_at REAL
);
CREATE INDEX IF NOT EXISTS failed_at ON failed_events (at);
CREATE TABLE IF NOT EXISTS delivered (
  destination TEXT NOT NULL, dedup_key TEXT NOT NULL, event_uid TEXT NOT NULL, at REAL NOT NULL,
  PRIMARY KEY (destination, dedup_key)
);
CREATE TABLE IF NOT EXISTS inflight (
  destination TEXT NOT NULL, dedup_key TEXT NOT NULL, at REAL NOT NULL, until REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (destination, dedup_key)
);
CREATE TABLE IF NOT EXISTS traces (
  id INTEGER PRIMARY KEY AUTOINCREMENT, debug_token TEXT NOT NULL, hit_id TEXT NOT NULL,
  stage TEXT NOT NULL, at REAL NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_token ON traces (debug_token, id);
CREATE INDEX IF NOT EXISTS traces_hit ON traces (hit_id);
CREATE INDEX IF NOT EXISTS failed_hit ON failed_events (hit_id);
"""


class SqliteStore(Store):
    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "store.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        try:
            conn = self._conn()
            conn.executescript(SCHEMA)
            if "until" not in {row[1] for row in conn.execute("PRAGMA table_info(inflight)")}:
                conn.execute("ALTER TABLE inflight ADD COLUMN until REAL NOT NULL DEFAULT 0")  # stores before 2026-12
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"local store: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
        return conn

    def _write(self, fn):
        try:
            return write_transaction(self._conn(), fn)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"local store: {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"local store: {exc}") from exc

    # -- writes
    def record_hits(self, hits: Sequence[RawHit]) -> None:
        rows = [(h.hit_id, h.received_at, h.source, h.compact_json()) for h in hits]
        self._write(lambda c: c.executemany("INSERT OR IGNORE INTO raw_hits VALUES (?, ?, ?, ?)", rows))

    def record_events(self, events: Sequence[Event]) -> None:
        rows = [
            (
                e.event_uid, e.hit_id, e.event_id, e.name, e.timestamp, e.source,
                e.client.client_id, e.client.user_id, e.user_data.email, e.compact_json(),
            )
            for e in events
        ]
        self._write(
            lambda c: c.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        )

    def record_outcomes(
        self, outcomes: Sequence[Outcome], delivered: Sequence[DeliveredKey] = ()
    ) -> list[bool]:
        now = time.time()

        def write(conn: sqlite3.Connection) -> list[bool]:
            fresh = []
            for o in outcomes:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        o.hit_id, o.event_uid, o.destination, o.outcome.value, o.reason, o.detail,
                        o.event_name, ",".join(o.identifiers), o.at,
                    ),
                )
                fresh.append(cur.rowcount == 1)
            conn.executemany(
                "INSERT OR IGNORE INTO delivered VALUES (?, ?, ?, ?)",
                [(d.destination, d.dedup_key, d.event_uid, now) for d in delivered],
            )
            return fresh

        return self._write(write)

    def record_failures(self, failures: Sequence[FailedEvent]) -> None:
        rows = [
            (f.schema_, f.stage, f.hit_id, f.event_uid, f.destination, f.error_code, f.message, f.payload, f.at)
            for f in failures
        ]
        self._write(
            lambda c: c.executemany(
                "INSERT INTO failed_events (schema, stage, hit_id, event_uid, destination, error_code,"
                " message, payload, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        )

    def delivered_keys(self, destination: str, dedup_keys: Iterable[str]) -> dict[str, str]:
        keys = list(dedup_keys)
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, uid in self.query(
                f"SELECT dedup_key, event_uid FROM delivered WHERE destination = ? AND dedup_key IN ({marks})",
                [destination, *chunk],
            ):
                found[key] = uid
        return found

    def mark_inflight(self, destination: str, dedup_keys: Sequence[str], hold: float = 0.0) -> InflightClaim:
        now = time.time()

        def write(conn: sqlite3.Connection) -> InflightClaim:
            claim = InflightClaim()
            for start in range(0, len(dedup_keys), 500):
                chunk = list(dedup_keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                for key, until in conn.execute(
                        f"SELECT dedup_key, until FROM inflight WHERE destination = ? AND dedup_key IN ({marks})",
                        [destination, *chunk]):
                    if until > now:
                        claim.held[key] = until - now
                    else:
                        claim.resent.add(key)
            conn.executemany("INSERT OR REPLACE INTO inflight VALUES (?, ?, ?, ?)",
                             [(destination, k, now, now + hold) for k in dedup_keys if k not in claim.held])
            return claim

        return self._write(write)

    def clear_inflight(self, destination: str, dedup_keys: Sequence[str], unheld: Sequence[str] = ()) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM inflight WHERE destination = ? AND dedup_key = ?",
                             [(destination, k) for k in dedup_keys])
            conn.executemany("UPDATE inflight SET until = 0 WHERE destination = ? AND dedup_key = ?",
                             [(destination, k) for k in unheld])

        self._write(write)

    def record_trace(self, debug_token: str, hit_id: str, stage: str, data: dict[str, Any]) -> None:
        doc = json.dumps(data, default=str, separators=(",", ":"))
        self._write(
            lambda c: c.execute(
                "INSERT INTO traces (debug_token, hit_id, stage, at, data) VALUES (?, ?, ?, ?, ?)",
                (debug_token, hit_id, stage, time.time(), doc),
            )
        )

    def requeue_dead_letters(self, failure_ids: Sequence[int], tasks: Sequence[DeliveryTask]) -> None:
        """Replay is about to resend these: the old dead_lettered outcome gives way to the new
        attempt's (still one outcome per pair) and the failed_events rows are marked replayed."""
        self._write(lambda c: (
            c.executemany(
                "DELETE FROM outcomes WHERE hit_id = ? AND event_uid = ? AND destination = ? AND outcome = 'dead_lettered'",
                [(t.hit_id, t.event_uid, t.destination) for t in tasks]),
            c.executemany("UPDATE failed_events SET replayed_at = strftime('%s','now') WHERE id = ?",
                          [(row_id,) for row_id in failure_ids]),
        ))

    # -- reads used by tests, the CLI and the dashboard
    def outcome_counts(self) -> dict[tuple[str, str], int]:
        rows = self.query("SELECT destination, outcome, COUNT(*) FROM outcomes GROUP BY 1, 2")
        return {(d, o): n for d, o, n in rows}

    def outcomes_for_hit(self, hit_id: str) -> list[tuple]:
        return self.query(
            "SELECT event_uid, destination, outcome, reason, detail FROM outcomes WHERE hit_id = ? ORDER BY 1, 2",
            (hit_id,),
        )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- monitoring reads (dashboard, alert rules, debug view): read-only, windows are [since, until)
    def outcome_breakdown(self, since: float, until: float) -> list[tuple]:
        """(destination, outcome, reason, event_name, count, sample detail) of outcomes recorded in the window."""
        return self.query(
            "SELECT destination, outcome, reason, COALESCE(event_name, ''), COUNT(*), MAX(detail) FROM outcomes"
            " WHERE at >= ? AND at < ? GROUP BY 1, 2, 3, 4",
            (since, until),
        )

    def outcome_series(self, since: float, until: float, bucket: float) -> list[tuple]:
        """(bucket index, outcome, count): outcomes per time bucket of `bucket` seconds from `since`."""
        return self.query(
            "SELECT CAST((at - ?) / ? AS INTEGER), outcome, COUNT(*) FROM outcomes"
            " WHERE at >= ? AND at < ? GROUP BY 1, 2",
            (since, bucket, since, until),
        )

    def event_series(self, since: float, until: float, bucket: float) -> list[tuple]:
        """(bucket index, count) of distinct events with an outcome recorded per time bucket."""
        return self.query(
            "SELECT CAST((at - ?) / ? AS INTEGER), COUNT(DISTINCT event_uid) FROM outcomes"
            " WHERE at >= ? AND at < ? AND event_uid != '*' GROUP BY 1",
            (since, bucket, since, until),
        )

    def hit_series(self, since: float, until: float, bucket: float) -> list[tuple]:
        """(bucket index, count) of hits received (raw_hits) per time bucket."""
        return self.query(
            "SELECT CAST((received_at - ?) / ? AS INTEGER), COUNT(*) FROM raw_hits"
            " WHERE received_at >= ? AND received_at < ? GROUP BY 1",
            (since, bucket, since, until),
        )

    def hit_count(self, since: float, until: float) -> int:
        return self.query("SELECT COUNT(*) FROM raw_hits WHERE received_at >= ? AND received_at < ?",
                          (since, until))[0][0]

    def last_hit_at(self, until: float) -> float | None:
        return self.query("SELECT MAX(received_at) FROM raw_hits WHERE received_at < ?", (until,))[0][0]

    def identifier_counts_by_event(self, since: float, until: float) -> list[tuple]:
        """(destination, event name, comma-joined identifiers, count) of delivered outcomes in the window."""
        return self.query(
            "SELECT destination, event_name, identifiers, COUNT(*) FROM outcomes"
            " WHERE outcome = 'delivered' AND at >= ? AND at < ? GROUP BY 1, 2, 3",
            (since, until),
        )

    def debug_tokens(self, limit: int = 50) -> list[tuple]:
        """(debug_token, traced hits, first at, last at), most recent first."""
        return self.query(
            "SELECT debug_token, COUNT(DISTINCT hit_id), MIN(at), MAX(at) FROM traces"
            " GROUP BY debug_token ORDER BY MAX(at) DESC LIMIT ?",
            (limit,),
        )

    def debug_trace(self, debug_token: str, max_hits: int = 50) -> dict[str, list[tuple]]:
        """Everything recorded for the most recent `max_hits` hits of one debug token (raw docs: scrub before showing)."""
        hit_ids = [row[0] for row in self.query(
            "SELECT hit_id FROM traces WHERE debug_token = ? GROUP BY hit_id ORDER BY MAX(id) DESC LIMIT ?",
            (debug_token, max_hits),
        )]
        return self.hit_records(hit_ids, debug_token)

    def find_hits(self, key: str, max_hits: int = 20) -> list[str]:
        """The hits, newest first, that an id names: a hit id, an event uid, an event_id, a transaction /
        order id or a client id (each an indexed lookup), or a hit refused before it had events."""
        rows = self.query(
            "SELECT hit_id, MAX(ts) FROM events WHERE event_id = ?1 OR client_id = ?1 OR hit_id = ?1 OR event_uid = ?1"
            " OR json_extract(doc, '$.ecommerce.transaction_id') = ?1 GROUP BY hit_id ORDER BY 2 DESC LIMIT ?2",
            (key, max_hits),
        )
        found = [hit_id for hit_id, _ in rows]
        if not found:  # no events: a hit refused at collect or transform is still on record
            found = [row[0] for row in self.query(
                "SELECT hit_id FROM raw_hits WHERE hit_id = ?1 UNION SELECT hit_id FROM failed_events WHERE hit_id = ?1",
                (key,))]  # fmt: skip
        return found

    def hit_records(self, hit_ids: list[str], debug_token: str | None = None) -> dict[str, list[tuple]]:
        """What the store holds for these hits: raw hit, events, outcomes, failed events and (for traced
        hits: of `debug_token`, or of any token) the stage traces."""
        if not hit_ids:
            return {"hit_ids": [], "traces": [], "raw_hits": [], "events": [], "outcomes": [], "failed": []}
        marks = ",".join("?" * len(hit_ids))
        token_clause, token_args = ("debug_token = ? AND ", [debug_token]) if debug_token else ("", [])
        return {
            "hit_ids": [(h,) for h in hit_ids],
            "traces": self.query(
                f"SELECT hit_id, stage, at, data FROM traces WHERE {token_clause}hit_id IN ({marks}) ORDER BY id",
                [*token_args, *hit_ids],
            ),
            "failed": self.query(
                f"SELECT hit_id, stage, destination, error_code, message, at FROM failed_events WHERE hit_id IN ({marks})"
                " ORDER BY at", hit_ids),  # fmt: skip
            "raw_hits": self.query(f"SELECT hit_id, received_at, doc FROM raw_hits WHERE hit_id IN ({marks})", hit_ids),
            "events": self.query(f"SELECT hit_id, event_uid, doc FROM events WHERE hit_id IN ({marks})", hit_ids),
            "outcomes": self.query(
                "SELECT hit_id, event_uid, destination, outcome, reason, detail, event_name, identifiers, at"
                f" FROM outcomes WHERE hit_id IN ({marks}) ORDER BY at",
                hit_ids,
            ),
        }


class SqliteReplaySource:
    """Replay and backfill candidates of the local store: failed_events and events."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def dead_letters(self, destination: str | None, since: float, until: float) -> Selection:
        sql = ("SELECT id, payload FROM failed_events WHERE error_code = 'dead_lettered' AND stage = 'deliver'"
               " AND replayed_at IS NULL AND at >= ? AND at < ?")
        params: list = [since, until]
        if destination:
            sql += " AND destination = ?"
            params.append(destination)
        rows = self.store.query(sql + " ORDER BY id", params)
        return Selection(len(rows), rows)

    def events(self, destination: str, since: float, until: float) -> Selection:
        rows = self.store.query("SELECT doc FROM events WHERE ts >= ? AND ts < ? ORDER BY ts", (since, until))
        return Selection(len(rows), rows)

    def requeue(self, rows: Sequence[tuple], tasks: Sequence[DeliveryTask]) -> None:
        self.store.requeue_dead_letters([row_id for row_id, _ in rows], tasks)

    def close(self) -> None:
        pass
