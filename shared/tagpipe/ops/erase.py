"""Erasure (a data subject's request) and retention for the local store and queue.

    erase(storage_dir, email=..., user_id=..., client_id=...)   -> EraseResult
    purge_older_than(storage_dir, days)                         -> {table: rows deleted}
    RetentionJob(storage_dir, days).start()                     a daily purge thread for the local stack

How a user is found. Stored events are pseudonymised by tagpipe.privacy.redact_event, so an email is
matched by its pseudonym (SHA-256 of the trimmed, lowercased address, the same function), and also raw
(for stores that kept raw PII). A user id matches `user_id` and the pseudonymised external_id; a client
id matches `client_id`. With `expand` (the default) the client ids and user ids seen on the matched
events are erased too, so erasing an email also removes that browser's page views.

What is deleted, per table:
- events: the matched events;
- raw_hits: every raw hit that produced a matched event, and every raw hit whose parsed events match
  (hits rejected later included) or whose text holds the email or its pseudonym. A raw hit is raw input:
  it is deleted whole, even when a server-to-server batch also held other users' events (those events
  stay in `events`, but can no longer be replayed from the raw hit);
- outcomes, delivered, inflight: the rows of the matched events, and the hit-level rows of the deleted
  raw hits;
- failed_events, traces: the rows of the deleted raw hits and of the matched events, and any row whose
  text names the user (a deliver trace holds the whole vendor batch, other users' events included);
- the local queue (queue.db): messages not processed yet that hold the user's raw hits or delivery tasks.
SQLite runs with secure_delete on, and the WAL is checkpointed, so the bytes do not linger in the files.
Vendors are not reached: delete the user there too (Meta, Google and TikTok have their own processes).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from tagpipe.models import DeliveryTask, Event, RawHit
from tagpipe.privacy import EMAIL_RE, pseudonym
from tagpipe.transport.local import connect

log = logging.getLogger("tagpipe.erase")

# the local store's tables and the column that dates a row
TIME_COLUMNS = {
    "raw_hits": "received_at",
    "events": "ts",
    "outcomes": "at",
    "failed_events": "at",
    "delivered": "at",
    "inflight": "at",
    "traces": "at",
}
CHUNK = 500


@dataclass
class Identifiers:
    emails: set[str] = field(default_factory=set)  # raw (lowercased) and pseudonymised
    user_ids: set[str] = field(default_factory=set)  # raw and pseudonymised (external_id)
    client_ids: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, email: str | None = None, user_id: str | None = None, client_id: str | None = None) -> Identifiers:
        ids = cls()
        if email and email.strip():
            ids.emails |= {email.strip().lower(), pseudonym(email)}
        if user_id and user_id.strip():
            ids.user_ids |= {user_id.strip(), pseudonym(user_id)}
        if client_id and client_id.strip():
            ids.client_ids.add(client_id.strip())
        return ids

    def __bool__(self) -> bool:
        return bool(self.emails or self.user_ids or self.client_ids)

    def matches(self, event: Event) -> bool:
        """A parsed (not yet redacted) event from a raw hit."""
        ud, client = event.user_data, event.client
        if ud.email and pseudonym(ud.email) in self.emails:
            return True
        if client.user_id and client.user_id in self.user_ids:
            return True
        if ud.external_id and (ud.external_id in self.user_ids or pseudonym(ud.external_id) in self.user_ids):
            return True
        if client.client_id and client.client_id in self.client_ids:
            return True
        for value in event.cookies.values():  # the server-set client id cookie, _ga (GA1.1.<cid>)
            if value in self.client_ids or any(value.endswith("." + c) for c in self.client_ids):
                return True
        return False

    def in_text(self, text: str) -> bool:
        """Distinctive identifiers anywhere in a raw document: the emails and their hashes, an email
        whose hash is the user's (erasing by client id finds the raw address too), long ids."""
        low = text.lower()
        for e in self.emails:
            if e in low or e.replace("@", "%40") in low:
                return True
        for m in EMAIL_RE.finditer(low):
            if pseudonym(m.group(0).replace("%40", "@")) in self.emails:
                return True
        return any(i in text for i in self.long_ids())

    def long_ids(self) -> list[str]:
        """Client and user ids long enough (>= 6 characters) to be searched for as text."""
        return [i for i in self.client_ids | self.user_ids if len(i) >= 6]


@dataclass
class EraseResult:
    deleted: dict[str, int] = field(default_factory=dict)  # table (or queue) -> rows deleted
    client_ids: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    values = list(values)
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def _open(path: Path) -> sqlite3.Connection:
    conn = connect(path)
    conn.execute("PRAGMA secure_delete=ON")  # overwrite deleted content, not just unlink the pages
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


_EVENT_COLUMNS = "event_uid, hit_id, client_id, user_id, email_sha256, event_id"


def _matching_events(conn: sqlite3.Connection, ids: Identifiers) -> list[tuple]:
    found: dict[str, tuple] = {}
    queries = []
    if ids.emails:
        queries.append(("lower(email_sha256) IN ({m})", sorted(ids.emails)))
    if ids.user_ids:
        queries.append(("user_id IN ({m})", sorted(ids.user_ids)))
        queries.append(("json_extract(doc, '$.user_data.external_id') IN ({m})", sorted(ids.user_ids)))
    if ids.client_ids:
        queries.append(("client_id IN ({m})", sorted(ids.client_ids)))
    for where, values in queries:
        for chunk in _chunks(values):
            sql = f"SELECT {_EVENT_COLUMNS} FROM events WHERE {where.format(m=','.join('?' * len(chunk)))}"
            for row in conn.execute(sql, chunk):
                found[row[0]] = row
    for e in ids.emails:  # emails kept elsewhere in the doc (params, raw-PII stores)
        for row in conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE instr(lower(doc), ?) > 0", (e,)):
            found[row[0]] = row
    return list(found.values())


def _raw_hit_matches(doc: str, ids: Identifiers) -> bool:
    if ids.in_text(doc):
        return True
    try:
        hit = RawHit.model_validate_json(doc)
    except ValidationError:
        return False
    from tagpipe.errors import InvalidInput
    from tagpipe.parsing import parse_hit

    try:
        events = parse_hit(hit)
    except InvalidInput:
        return False
    except Exception:  # a parser bug must not stop an erasure: fall back to the text match above
        log.exception("erase: could not parse raw hit %s", hit.hit_id)
        return False
    return any(ids.matches(e) for e in events)


def _delete_in(conn: sqlite3.Connection, table: str, column: str, values: Iterable[str], extra: str = "") -> int:
    n = 0
    for chunk in _chunks(values):
        cur = conn.execute(f"DELETE FROM {table} WHERE {column} IN ({','.join('?' * len(chunk))}){extra}", chunk)
        n += cur.rowcount
    return n


def _delete_text(conn: sqlite3.Connection, table: str, column: str, ids: Identifiers) -> int:
    doomed = [rid for rid, text in conn.execute(f"SELECT rowid, {column} FROM {table}") if text and ids.in_text(text)]
    return _delete_in(conn, table, "rowid", doomed)


def erase(
    storage_dir: str | Path,
    *,
    email: str | None = None,
    user_id: str | None = None,
    client_id: str | None = None,
    expand: bool = True,
    include_queue: bool = True,
) -> EraseResult:
    """Delete one person's data from the local store (and queue). See the module doc for the rules."""
    ids = Identifiers.of(email, user_id, client_id)
    if not ids:
        raise ValueError("erase needs an email, a user id or a client id")
    directory = Path(storage_dir)
    result = EraseResult()
    store_path = directory / "store.db"
    hit_ids: set[str] = set()
    event_uids: set[str] = set()
    event_ids: set[str] = set()
    if store_path.exists():
        conn = _open(store_path)
        try:
            tables = _tables(conn)
            if "events" in tables:
                for _ in range(4):  # expand: the ids seen with the user, to a fixed point (bounded)
                    rows = _matching_events(conn, ids)
                    before = (len(ids.client_ids), len(ids.user_ids), len(ids.emails))
                    for uid, hid, cid, usr, email, eid in rows:
                        event_uids.add(uid)
                        hit_ids.add(hid)
                        event_ids.add(eid)
                        if expand and cid:
                            ids.client_ids.add(cid)
                        if expand and usr:
                            ids.user_ids |= {usr, pseudonym(usr)}
                        if expand and email:
                            ids.emails.add(pseudonym(email))
                    if not expand or (len(ids.client_ids), len(ids.user_ids), len(ids.emails)) == before:
                        break
            if "raw_hits" in tables:
                for hid, doc in conn.execute("SELECT hit_id, doc FROM raw_hits"):
                    if hid not in hit_ids and _raw_hit_matches(doc, ids):
                        hit_ids.add(hid)
            conn.execute("BEGIN IMMEDIATE")
            try:
                d = result.deleted
                if "events" in tables:
                    d["events"] = _delete_in(conn, "events", "event_uid", event_uids)
                if "raw_hits" in tables:
                    d["raw_hits"] = _delete_in(conn, "raw_hits", "hit_id", hit_ids)
                if "outcomes" in tables:
                    d["outcomes"] = _delete_in(conn, "outcomes", "event_uid", event_uids) + _delete_in(
                        conn, "outcomes", "hit_id", hit_ids, " AND event_uid = '*'")
                if "delivered" in tables:
                    d["delivered"] = _delete_in(conn, "delivered", "event_uid", event_uids)
                if "inflight" in tables:  # dedup_key = "<vendor event name>:<event_id>"
                    d["inflight"] = sum(
                        conn.execute("DELETE FROM inflight WHERE substr(dedup_key, -length(?)) = ?",
                                     (f":{eid}", f":{eid}")).rowcount for eid in event_ids)  # fmt: skip
                if "failed_events" in tables:
                    d["failed_events"] = _delete_in(conn, "failed_events", "hit_id", hit_ids) + _delete_in(
                        conn, "failed_events", "event_uid", event_uids) + _delete_text(conn, "failed_events", "payload", ids)
                if "traces" in tables:
                    d["traces"] = _delete_in(conn, "traces", "hit_id", hit_ids) + _delete_text(conn, "traces", "data", ids)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    queue_path = directory / "queue.db"
    if include_queue and queue_path.exists():
        result.deleted["queue"] = _erase_queue(queue_path, ids, hit_ids, event_uids)
    result.client_ids = sorted(ids.client_ids)
    result.user_ids = sorted(u for u in ids.user_ids if len(u) != 64)
    log.info("erase: %d rows deleted (%s)", result.total, ", ".join(f"{k}={v}" for k, v in result.deleted.items()))
    return result


def _erase_queue(path: Path, ids: Identifiers, hit_ids: set[str], event_uids: set[str]) -> int:
    conn = _open(path)
    try:
        if "messages" not in _tables(conn):
            return 0
        doomed = []
        for row_id, data in conn.execute("SELECT id, data FROM messages"):
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            if _queued_matches(text, ids, hit_ids, event_uids):
                doomed.append(row_id)
        n = 0
        for chunk in _chunks(doomed):
            n += conn.execute(f"DELETE FROM messages WHERE id IN ({','.join('?' * len(chunk))})", chunk).rowcount
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return n
    finally:
        conn.close()


def _queued_matches(text: str, ids: Identifiers, hit_ids: set[str], event_uids: set[str]) -> bool:
    try:
        head = json.loads(text)
    except ValueError:
        return ids.in_text(text)
    if not isinstance(head, dict):
        return ids.in_text(text)
    if head.get("hit_id") in hit_ids or head.get("event_uid") in event_uids:
        return True
    if "event_uid" in head:  # a delivery task: hashed user data, ids
        try:
            task = DeliveryTask.model_validate(head)
        except ValidationError:
            return ids.in_text(text)
        blob = json.dumps(task.payload)
        return ids.in_text(blob) or any(c in blob for c in ids.client_ids if len(c) >= 8)
    return _raw_hit_matches(text, ids)


# --------------------------------------------------------------------------- retention


def retention_plan(privacy) -> dict[str, int]:
    """Days each local table is kept ([privacy] retention_days; raw_hits_retention_days for raw hits,
    which hold raw email, phone and IP); 0 = kept."""
    plan = {table: privacy.retention_days for table in TIME_COLUMNS}
    raw = [d for d in (privacy.raw_hits_retention_days, privacy.retention_days) if d > 0]
    plan["raw_hits"] = min(raw) if raw else 0
    return plan


def purge_older_than(storage_dir: str | Path, days: int | Mapping[str, int], *,
                     now: float | None = None) -> dict[str, int]:
    """Delete store rows older than `days` (one number, or days per table with 0 = keep), by each
    table's time column. Returns rows deleted per table."""
    plan = dict(days) if isinstance(days, Mapping) else dict.fromkeys(TIME_COLUMNS, days)
    if not any(d > 0 for d in plan.values()):
        raise ValueError("days must be positive")
    path = Path(storage_dir) / "store.db"
    if not path.exists():
        return {}
    now = time.time() if now is None else now
    conn = _open(path)
    deleted: dict[str, int] = {}
    try:
        tables = _tables(conn)
        for table, column in TIME_COLUMNS.items():
            if table not in tables or plan.get(table, 0) <= 0:
                continue
            cutoff = now - plan[table] * 86_400
            n = 0
            while True:  # small transactions: the running stack keeps writing meanwhile
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {column} < ? LIMIT 5000)",
                    (cutoff,),
                )
                n += cur.rowcount
                if cur.rowcount < 5000:
                    break
            deleted[table] = n
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    if any(deleted.values()):
        log.info("retention: deleted rows older than %s days: %s", days, deleted)
    return deleted


class RetentionJob:
    """Runs purge_older_than at start and then every `interval` seconds, on a daemon thread.

    The local stack's hook: `RetentionJob(cfg.storage.dir, days, stop_event).start()`.
    """

    def __init__(self, storage_dir: str | Path, days: int | Mapping[str, int], stop: threading.Event | None = None,
                 interval: float = 86_400.0) -> None:  # fmt: skip
        self.storage_dir, self.days, self.interval = storage_dir, days, interval
        self.stop = stop or threading.Event()
        self.thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self.runs = 0

    def start(self) -> RetentionJob:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                purge_older_than(self.storage_dir, self.days)
            except sqlite3.Error as exc:
                log.error("retention purge failed (retried at the next run): %s", exc)
            self.runs += 1
            self.stop.wait(self.interval)

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        self.thread.join(timeout)
