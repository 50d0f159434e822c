"""The embedded store: one SQLite file (WAL) beside the local queue.

Queries for the dashboard, alerts and the debug view read the same file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from shared.errors import StoreUnavailable
from shared.models import Event, FailedEvent, Outcome, RawHit
from shared.storage.base import DeliveredKey, Store
from shared.transport.local import connect

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
  message TEXT NOT NULL, payload TEXT NOT NULL, at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS failed_at ON failed_events (at);
CREATE TABLE IF NOT EXISTS delivered (
  destination TEXT NOT NULL, dedup_key TEXT NOT NULL, event_uid TEXT NOT NULL, at REAL NOT NULL,
  PRIMARY KEY (destination, dedup_key)
);
CREATE TABLE IF NOT EXISTS traces (
  id INTEGER PRIMARY KEY AUTOINCREMENT, debug_token TEXT NOT NULL, hit_id TEXT NOT NULL,
  stage TEXT NOT NULL, at REAL NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_token ON traces (debug_token, id);
"""


class SqliteStore(Store):
    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "store.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        try:
            self._conn().executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"local store: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
        return conn

    def _write(self, fn):
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"local store: {exc}") from exc
        return result

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"local store: {exc}") from exc

    # -- writes
    def record_hits(self, hits: Sequence[RawHit]) -> None:
        rows = [(h.hit_id, h.received_at, h.source, h.model_dump_json()) for h in hits]
        self._write(lambda c: c.executemany("INSERT OR IGNORE INTO raw_hits VALUES (?, ?, ?, ?)", rows))

    def record_events(self, events: Sequence[Event]) -> None:
        rows = [
            (
                e.event_uid, e.hit_id, e.event_id, e.name, e.timestamp, e.source,
                e.client.client_id, e.client.user_id, e.user_data.email, e.model_dump_json(),
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

    def record_trace(self, debug_token: str, hit_id: str, stage: str, data: dict[str, Any]) -> None:
        doc = json.dumps(data, default=str, separators=(",", ":"))
        self._write(
            lambda c: c.execute(
                "INSERT INTO traces (debug_token, hit_id, stage, at, data) VALUES (?, ?, ?, ?, ?)",
                (debug_token, hit_id, stage, time.time(), doc),
            )
        )

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
