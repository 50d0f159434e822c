"""LocalBus performance features keep Pub/Sub semantics: publish_async (group commit) and the
background WAL checkpointer."""

import asyncio
import sqlite3
import time

import pytest

from tagpipe.errors import StoreUnavailable
from tagpipe.transport import local
from tagpipe.transport.base import RAW_HITS, Subscription
from tagpipe.transport.local import LocalBus


def topology():
    return {"transform": Subscription("transform", RAW_HITS, 3, 0.0, 0.0, 60.0)}


class SpyConn:
    """The group commit's connection, with its statements noted (and optionally one failing)."""

    def __init__(self, conn, fail_on: str | None = None):
        self.conn, self.fail_on, self.statements = conn, fail_on, []

    def execute(self, sql, *args):
        self.statements.append(sql)
        return self.conn.execute(sql, *args)

    def executemany(self, sql, rows):
        self.statements.append("executemany")
        if self.fail_on == "executemany":
            raise sqlite3.OperationalError("disk I/O error")
        return self.conn.executemany(sql, rows)

    @property
    def in_transaction(self):
        return self.conn.in_transaction

    def close(self):
        self.conn.close()


def spy_on_group_commits(bus, monkeypatch, fail_on=None) -> SpyConn:
    real = bus._group_conn
    spy = SpyConn(None, fail_on)

    def group_conn():
        spy.conn = real()
        return spy

    monkeypatch.setattr(bus, "_group_conn", group_conn)
    return spy


def test_publish_async_commits_one_loop_iteration_in_one_transaction(tmp_path, monkeypatch):
    bus = LocalBus(tmp_path, topology())
    spy = spy_on_group_commits(bus, monkeypatch)

    async def main():
        return await asyncio.gather(*(bus.publish_async(RAW_HITS, f"m{i}".encode(), {"i": str(i)}) for i in range(50)))

    ids = asyncio.run(main())
    assert spy.statements == ["BEGIN IMMEDIATE", "executemany", "COMMIT"] and len(set(ids)) == 50
    got = bus.pull("transform", 100)
    assert [m.data for m in got] == [f"m{i}".encode() for i in range(50)]
    assert [m.message_id for m in got] == ids and got[7].attributes == {"i": "7"}
    bus.close()


def test_publish_async_is_durable_before_it_returns(tmp_path):
    bus = LocalBus(tmp_path, topology())

    async def main():
        return await bus.publish_async(RAW_HITS, b"x")

    message_id = asyncio.run(main())
    other = LocalBus(tmp_path, topology())  # another connection sees the committed row
    assert [m.message_id for m in other.pull("transform", 10)] == [message_id]
    other.close()
    bus.close()


def test_publish_async_failure_reaches_every_caller_of_the_batch(tmp_path, monkeypatch):
    bus = LocalBus(tmp_path, topology())
    spy = spy_on_group_commits(bus, monkeypatch, fail_on="executemany")

    async def main():
        return await asyncio.gather(*(bus.publish_async(RAW_HITS, b"x") for _ in range(3)), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, StoreUnavailable) and "disk I/O error" in str(r) for r in results)
    assert spy.statements[-1] == "ROLLBACK" and bus.pull("transform", 10) == []
    with pytest.raises(ValueError):
        asyncio.run(bus.publish_async("no-such-topic", b"x"))
    bus.close()


def test_checkpointer_keeps_the_wal_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "WAL_RESTART_BYTES", 256 * 1024)
    monkeypatch.setattr(local, "CHECKPOINT_INTERVAL", 0.01)
    bus = LocalBus(tmp_path, topology())
    wal = tmp_path / "queue.db-wal"
    payload = b"x" * 4000
    deadline = time.monotonic() + 20
    sizes = []
    for i in range(3000):  # ~12 MB of publishes, one commit each
        bus.publish(RAW_HITS, payload)
        if i % 100 == 0:
            sizes.append(wal.stat().st_size)
            time.sleep(0.02)  # let the checkpointer run
        assert time.monotonic() < deadline
    assert max(sizes[len(sizes) // 2:]) < 4 * 2**20, sizes  # without the checkpointer: ~12 MB and growing
    assert len(bus.pull("transform", 5000)) == 3000
    bus.close()
    assert sqlite3.connect(tmp_path / "queue.db").execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 3000


def test_group_commit_never_blocks_the_loop_while_another_writer_holds_the_lock(tmp_path):
    """Another connection (a worker thread, the worker process, a WAL restart) in a write transaction:
    the loop keeps running, and the group commits as soon as the lock is free."""
    bus = LocalBus(tmp_path, topology())
    other = local.connect(bus.path)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock

    async def main():
        first = asyncio.ensure_future(bus.publish_async(RAW_HITS, b"a"))
        turns = 0
        while turns < 20:  # the loop is free: other work (here, these turns) goes on
            await asyncio.sleep(0)
            turns += 1
        second = asyncio.ensure_future(bus.publish_async(RAW_HITS, b"b"))  # joins the waiting group
        await asyncio.sleep(0)
        assert not first.done() and not second.done()
        other.execute("COMMIT")  # the lock is free
        return await asyncio.wait_for(asyncio.gather(first, second), 10)

    ids = asyncio.run(main())
    assert [m.message_id for m in bus.pull("transform", 10)] == ids
    other.close()
    bus.close()


def test_group_commit_gives_up_after_the_busy_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "GROUP_COMMIT_GIVE_UP", 0.0)  # the first busy answer is the last
    bus = LocalBus(tmp_path, topology())
    other = local.connect(bus.path)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreUnavailable, match="locked"):
        asyncio.run(bus.publish_async(RAW_HITS, b"x"))
    other.execute("ROLLBACK")
    other.close()
    assert asyncio.run(bus.publish_async(RAW_HITS, b"y"))  # the next group goes through
    bus.close()
