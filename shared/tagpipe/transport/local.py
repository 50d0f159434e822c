"""A durable on-disk queue in one SQLite file: the local stand-in for Pub/Sub.

WAL mode with synchronous=NORMAL: a committed publish survives the process being killed
(SIGKILL), which is the failure a single machine sees; only an OS crash can lose the last
commits. Each subscription gets its own copy of a message (fan-out at publish). A pulled
message is leased by pushing its `available_at` forward by the ack deadline, so a consumer
that dies simply lets the lease run out and the message is delivered again.

Performance (figures in docs/benchmarks.md):
- WAL checkpoints (copying the log back into the database, with an fsync) run on a background
  thread of their own, never inside a publish: collect publishes on its event loop, and an
  automatic checkpoint there stalled every request in flight for a few milliseconds.
- `publish_async` is group commit for an event loop: every publish made in one loop iteration
  shares one transaction, and each caller resumes once that transaction is committed.
- ack, nack and lease are one transaction per batch, not one commit per message.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from tagpipe.errors import StoreUnavailable
from tagpipe.transport.base import TOPOLOGY, Bus, Message, Subscription, backoff_delay

INSERT = ("INSERT INTO messages (subscription, message_id, data, attributes, publish_time, available_at)"
          " VALUES (?, ?, ?, ?, ?, ?)")
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  subscription TEXT NOT NULL,
  message_id TEXT NOT NULL,
  data BLOB NOT NULL,
  attributes TEXT,
  publish_time REAL NOT NULL,
  available_at REAL NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  leased INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (subscription, available_at);
"""


def connect(path: Path, autocheckpoint: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    if not autocheckpoint:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_RESTART_BYTES}")
    return conn


def _busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock."""
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


def write_transaction(conn: sqlite3.Connection, fn):
    """fn(conn) in one write transaction (taken at once: BEGIN IMMEDIATE), rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # an I/O error may have rolled it back already; keep that error, not ours
            conn.execute("ROLLBACK")
        raise
    return result


CHECKPOINT_INTERVAL = 0.2  # seconds between background checkpoints while there are writes
CHECKPOINT_IDLE_EXIT = 10.0  # the checkpointer thread ends after this long without writes
# A PASSIVE checkpoint never completes while writes keep coming (new frames land while it copies), so
# the WAL would only grow. Past this size, right after a PASSIVE round that left little to copy, the
# background thread runs a RESTART checkpoint: it holds writers back only while it copies that little
# and syncs (a few ms), then the next write starts the log over and journal_size_limit truncates the
# file back to this size. Past 4x it restarts whatever is left (a writer faster than the copying).
WAL_RESTART_BYTES = 16 * 2**20
RESTART_LEFTOVER_FRAMES = 256  # pages a PASSIVE round may leave uncopied for a RESTART to follow it
# The event loop's group commit never waits for the write lock: it tries, and while another writer (a
# worker thread, the worker process, a WAL restart) holds it, tries again this much later, for at most
# GROUP_COMMIT_GIVE_UP seconds (then StoreUnavailable, as publish()'s busy timeout).
GROUP_COMMIT_RETRY = 0.0005  # the first retry; each next one waits twice as long, up to GROUP_COMMIT_RETRY_MAX
GROUP_COMMIT_RETRY_MAX = 0.004  # (a loop retrying every 0.5 ms took the GIL from the worker threads holding the lock)
GROUP_COMMIT_GIVE_UP = 30.0
MAX_VARIABLES = 500  # ids per `IN (...)` list
# how often a waiting pull looks for messages another process published (a publish in this process
# wakes it at once); an empty look is one indexed read, no write transaction
POLL_INTERVAL = 0.01


def _checkpointer(ref: weakref.ref, path: Path, closing: threading.Event) -> None:
    """Checkpoint the WAL in the background while the bus writes; end when it is idle or gone."""
    conn = connect(path, autocheckpoint=False)
    wal = Path(f"{path}-wal")
    seen, idle_since = -1, time.monotonic()
    try:
        while not closing.wait(CHECKPOINT_INTERVAL):
            bus = ref()
            if bus is None:
                return
            writes = bus._writes
            del bus
            if writes == seen:
                if time.monotonic() - idle_since > CHECKPOINT_IDLE_EXIT:
                    return
                continue
            seen, idle_since = writes, time.monotonic()
            try:
                _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # never waits
                size = wal.stat().st_size if wal.exists() else 0
                if size > WAL_RESTART_BYTES and (frames - copied <= RESTART_LEFTOVER_FRAMES
                                                 or size > 4 * WAL_RESTART_BYTES):
                    conn.execute("PRAGMA wal_checkpoint(RESTART)")
            except (sqlite3.Error, OSError):
                pass  # the next round tries again; a write never depends on it
    finally:
        conn.close()
        bus = ref()
        if bus is not None:
            with bus._checkpoint_lock:
                if bus._checkpoint_thread is threading.current_thread():
                    bus._checkpoint_thread = None


class LocalBus(Bus):
    publish_is_fast = True  # one SQLite commit (~20 µs), no fsync in WAL/NORMAL, no checkpoint inline

    def __init__(self, directory: str | Path, topology: Mapping[str, Subscription] = TOPOLOGY) -> None:
        self.path = Path(directory) / "queue.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.topology = dict(topology)
        self._by_topic: dict[str, list[str]] = {}
        for sub in self.topology.values():
            self._by_topic.setdefault(sub.topic, []).append(sub.name)
        self._local = threading.local()
        self._wakeup = threading.Condition()
        # message ids: unique per bus instance (random prefix) and cheap (a counter), 32 hex digits
        self._id_prefix = uuid.uuid4().hex[:16]
        self._id_counter = itertools.count()
        self._writes = 0  # bumped by every write; the checkpointer checkpoints while it moves
        self._closing = threading.Event()
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_thread: threading.Thread | None = None
        self._busy_since: dict[asyncio.AbstractEventLoop, tuple[float, int]] = {}  # a waiting group: since, retries
        self._group_conns: dict[int, sqlite3.Connection] = {}  # per event-loop thread (_group_conn)
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple]] = {}  # publish_async, per loop
        with self._guard():
            self._conn().executescript(SCHEMA)

    # -- plumbing
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, autocheckpoint=False)
        return conn

    def _new_id(self) -> str:
        return f"{self._id_prefix}{next(self._id_counter):016x}"

    def _wrote(self) -> None:
        """Note a write; make sure the background checkpointer runs."""
        self._writes += 1
        if self._checkpoint_thread is None and not self._closing.is_set():
            with self._checkpoint_lock:
                if self._checkpoint_thread is None:
                    self._checkpoint_thread = threading.Thread(
                        target=_checkpointer, args=(weakref.ref(self), self.path, self._closing),
                        name="tagpipe-queue-checkpoint", daemon=True)
                    self._checkpoint_thread.start()

    def _transaction(self, fn):
        """Run fn(conn) in one write transaction on this thread's connection."""
        with self._guard():
            result = write_transaction(self._conn(), fn)
        self._wrote()
        return result

    class _guard:
        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc, tb):
            if exc_type is not None and issubclass(exc_type, sqlite3.Error):
                raise StoreUnavailable(f"local queue: {exc}") from exc
            return False

    # -- publish
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        return self.publish_many(topic, [(data, attributes)])[0]

    def publish_many(
        self, topic: str, items: Sequence[tuple[bytes, Mapping[str, str] | None]]
    ) -> list[str]:
        subscriptions = self._subscriptions(topic)
        now = time.time()
        ids: list[str] = []
        rows: list[tuple] = []
        for data, attrs in items:
            message_id = self._new_id()
            ids.append(message_id)
            self._rows(rows, subscriptions, message_id, data, attrs, now)
        self._transaction(lambda conn: conn.executemany(INSERT, rows))
        self._notify()
        return ids

    async def publish_async(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        """publish() for a caller on an event loop, with group commit: the publishes of one loop
        iteration are written in one transaction after it, and each returns once that is committed
        (durable as publish() is). Raises StoreUnavailable like publish()."""
        subscriptions = self._subscriptions(topic)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        message_id = self._new_id()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append((subscriptions, message_id, data, attributes, future))
        await future
        return message_id

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the loop's pending group. It runs on the loop, so it must never sleep in SQLite's busy
        handler (1, 2, 5, 10 ms ... steps) while another writer holds the lock: every request in flight
        would stall with it (at 500 hits/s beside the local stack's worker threads, collect fell to ~150
        answers a second; a WAL restart made the half-load p99 tail). It takes the lock only if free, on a
        connection with no busy timeout; else the loop goes on serving and the group, with what joins it
        meanwhile, tries again GROUP_COMMIT_RETRY later (backing off to GROUP_COMMIT_RETRY_MAX)."""
        batch = self._pending.get(loop)
        if not batch:
            self._pending.pop(loop, None)
            return
        now = time.time()
        rows: list[tuple] = []
        for subscriptions, message_id, data, attrs, _ in batch:
            self._rows(rows, subscriptions, message_id, data, attrs, now)
        try:
            with self._guard():
                write_transaction(self._group_conn(), lambda conn: conn.executemany(INSERT, rows))
        except StoreUnavailable as exc:
            since, retries = self._busy_since.setdefault(loop, (time.monotonic(), 0))
            cause = exc.__cause__
            if isinstance(cause, sqlite3.OperationalError) and _busy(cause) and time.monotonic() - since < GROUP_COMMIT_GIVE_UP:
                self._busy_since[loop] = (since, retries + 1)  # the group stays pending; what joins it meanwhile too
                loop.call_later(min(GROUP_COMMIT_RETRY * 2**retries, GROUP_COMMIT_RETRY_MAX), self._flush, loop)
                return
            self._end_group(loop, exc)
            return
        except BaseException as exc:  # every caller of this group gets it
            self._end_group(loop, exc)
            return
        del self._pending[loop]  # publishes from here on form the next group
        self._busy_since.pop(loop, None)
        self._wrote()
        for *_, future in batch:
            if not future.done():  # a caller cancelled meanwhile: its message is published anyway
                future.set_result(None)
        self._notify()

    def _end_group(self, loop: asyncio.AbstractEventLoop, failure: BaseException) -> None:
        self._busy_since.pop(loop, None)
        for *_, future in self._pending.pop(loop, []):
            if not future.done():
                future.set_exception(failure)

    def _group_conn(self) -> sqlite3.Connection:
        """The group commit's own connection, one per event-loop thread: no busy timeout."""
        conn = self._group_conns.get(threading.get_ident())
        if conn is None:
            conn = connect(self.path, autocheckpoint=False)
            conn.execute("PRAGMA busy_timeout=0")
            self._group_conns[threading.get_ident()] = conn
        return conn

    def _subscriptions(self, topic: str) -> list[str]:
        subscriptions = self._by_topic.get(topic)
        if subscriptions is None:
            raise ValueError(f"unknown topic {topic!r}")
        return subscriptions

    @staticmethod
    def _rows(rows: list[tuple], subscriptions: list[str], message_id: str, data: bytes,
              attrs: Mapping[str, str] | None, now: float) -> None:
        attrs_json = json.dumps(dict(attrs), separators=(",", ":")) if attrs else None
        for sub in subscriptions:
            rows.append((sub, message_id, data, attrs_json, now, now))

    def _notify(self) -> None:
        with self._wakeup:
            self._wakeup.notify_all()

    # -- consume
    def pull(self, subscription: str, max_messages: int = 100, wait: float = 0.0) -> list[Message]:
        deadline = time.monotonic() + wait
        while True:
            messages = self._lease(subscription, max_messages)
            remaining = deadline - time.monotonic()
            if messages or remaining <= 0:
                return messages
            with self._wakeup:  # woken by a publish in this process; polls for other processes
                self._wakeup.wait(min(remaining, POLL_INTERVAL))

    def _lease(self, subscription: str, max_messages: int) -> list[Message]:
        sub = self.topology[subscription]
        now = time.time()
        with self._guard():
            conn = self._conn()
            # a read first, outside any write lock: an empty subscription costs no write transaction
            if conn.execute("SELECT 1 FROM messages WHERE subscription = ? AND available_at <= ? LIMIT 1",
                            (subscription, now)).fetchone() is None:
                return []
        return self._transaction(lambda conn: self._lease_in(conn, sub, now, max_messages))

    def _lease_in(self, conn: sqlite3.Connection, sub: Subscription, now: float, max_messages: int) -> list[Message]:
        out: list[Message] = []
        dead: list[tuple] = []
        leased: list[int] = []
        rows = conn.execute(
            "SELECT id, message_id, data, attributes, publish_time, attempts FROM messages"
            " WHERE subscription = ? AND available_at <= ? ORDER BY available_at, id LIMIT ?",
            (sub.name, now, max_messages),
        ).fetchall()
        decoded: dict[str, dict] = {}  # many messages carry the same attributes ({"destination": ...})
        for row_id, message_id, data, attrs_json, publish_time, attempts in rows:
            if attrs_json:
                attrs = decoded.get(attrs_json)
                if attrs is None:
                    attrs = decoded[attrs_json] = json.loads(attrs_json)
                attrs = dict(attrs)
            else:
                attrs = {}
            if attempts >= sub.max_delivery_attempts and sub.dead_letter_topic:
                dead.append((row_id, message_id, data, attrs, attempts))
                continue
            leased.append(row_id)
            out.append(Message(message_id, data, attrs, attempts + 1, f"{row_id}:{attempts + 1}", publish_time))
        until = now + sub.ack_deadline
        for start in range(0, len(leased), MAX_VARIABLES):
            chunk = leased[start : start + MAX_VARIABLES]
            conn.execute(
                f"UPDATE messages SET attempts = attempts + 1, available_at = ?, leased = 1"
                f" WHERE id IN ({','.join('?' * len(chunk))})",
                (until, *chunk),
            )
        for row_id, message_id, data, attrs, attempts in dead:
            self._forward_dead_letter(conn, sub, message_id, data, attrs, attempts, now)
            conn.execute("DELETE FROM messages WHERE id = ?", (row_id,))
        return out

    def _forward_dead_letter(self, conn, sub, message_id, data, attrs, attempts, now) -> None:
        attrs = dict(attrs)
        # the attributes Pub/Sub adds when it dead-letters a message
        attrs.update(
            {
                "CloudPubSubDeadLetterSourceSubscription": sub.name,
                "CloudPubSubDeadLetterSourceDeliveryCount": str(attempts),
            }
        )
        attrs_json = json.dumps(attrs, separators=(",", ":"))
        for target in self._by_topic.get(sub.dead_letter_topic, []):
            conn.execute(
                "INSERT INTO messages (subscription, message_id, data, attributes, publish_time, available_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (target, message_id, data, attrs_json, now, now),
            )

    def _settle(self, ack_ids: Sequence[str]) -> list[tuple[int, int]]:
        return [tuple(int(part) for part in ack_id.split(":")) for ack_id in ack_ids]

    def ack(self, subscription: str, ack_ids: Sequence[str]) -> None:
        if not ack_ids:
            return
        rows = self._settle(ack_ids)
        self._transaction(lambda conn: conn.executemany("DELETE FROM messages WHERE id = ? AND attempts = ?", rows))

    def nack(self, subscription: str, ack_ids: Sequence[str], delay: float | None = None) -> None:
        if not ack_ids:
            return
        sub = self.topology[subscription]
        now = time.time()
        rows = []
        for row_id, attempt in self._settle(ack_ids):
            wait = backoff_delay(sub, attempt) if delay is None else delay
            rows.append((now + wait, row_id, attempt))
        self._transaction(lambda conn: conn.executemany(
            "UPDATE messages SET available_at = ?, leased = 0 WHERE id = ? AND attempts = ?", rows))

    def release_leases(self) -> int:
        """Make every leased message available now. Only for a process that is the sole consumer
        of this queue, at start-up: the leases it finds belong to a previous run that died."""
        now = time.time()
        return self._transaction(
            lambda conn: conn.execute("UPDATE messages SET available_at = ?, leased = 0 WHERE leased = 1", (now,)).rowcount
        )

    # -- introspection (dashboard, tests, alerts)
    def backlog(self) -> dict[str, dict[str, float]]:
        """Per subscription: messages waiting and the age of the oldest, in seconds."""
        now = time.time()
        with self._guard():
            rows = self._conn().execute(
                "SELECT subscription, COUNT(*), MIN(publish_time) FROM messages GROUP BY subscription"
            ).fetchall()
        return {s: {"messages": n, "oldest_age": now - oldest} for s, n, oldest in rows}

    def close(self) -> None:
        self._closing.set()  # the checkpointer ends (its connection's close checkpoints what is left)
        thread = self._checkpoint_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        for conn in self._group_conns.values():
            conn.close()
        self._group_conns.clear()
