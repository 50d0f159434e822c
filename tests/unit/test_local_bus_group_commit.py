"""LocalBus performance features keep Pub/Sub semantics: publish_async (group commit) and the
background WAL checkpointer."""

import asyncio
import sqlite3
import time

import pytest

from shared.errors import StoreUnavailable
from shared.transport import local
from shared.transport.base import RAW_HITS, Subscription
from shared.transport.local import LocalBus


def topology():
    return {"transform": Subscription("transform", RAW_HITS, 3, 0.0, 0.0, 60.0)}


def test_publish_async_commits_one_loop_iteration_in_one_transaction(tmp_path, monkeypatch):
    bus = LocalBus(tmp_path, topology())
    transactions = []
    real = bus._transaction
    monkeypatch.setattr(bus, "_transaction", lambda fn: transactions.append(1) or real(fn))

    async def main():
        return await asyncio.gather(*(bus.publish_async(RAW_HITS, f"m{i}".encode(), {"i": str(i)}) for i in range(50)))

    ids = asyncio.run(main())
    assert len(transactions) == 1 and len(set(ids)) == 50
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

    def broken(fn):
        raise StoreUnavailable("local queue: disk I/O error")

    monkeypatch.setattr(bus, "_transaction", broken)

    async def main():
        return await asyncio.gather(*(bus.publish_async(RAW_HITS, b"x") for _ in range(3)), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, StoreUnavailable) for r in results)
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


def test_group_commit_waits_for_a_wal_restart_without_blocking_the_loop(tmp_path):
    """While the checkpointer restarts the WAL, the loop keeps running and the group commits after."""
    bus = LocalBus(tmp_path, topology())
    bus._restarting = True  # what local._restart sets while its RESTART checkpoint runs

    async def main():
        first = asyncio.ensure_future(bus.publish_async(RAW_HITS, b"a"))
        turns = 0
        while turns < 20:  # the loop is free: other work (here, these turns) goes on
            await asyncio.sleep(0)
            turns += 1
        second = asyncio.ensure_future(bus.publish_async(RAW_HITS, b"b"))  # joins the waiting group
        await asyncio.sleep(0)
        assert not first.done() and not second.done()
        assert bus.pull("transform", 10) == []  # nothing was written during the restart
        bus._restarting = False
        return await asyncio.wait_for(asyncio.gather(first, second), 10)

    ids = asyncio.run(main())
    assert [m.message_id for m in bus.pull("transform", 10)] == ids
    bus.close()


def test_restart_sets_the_flag_only_while_it_runs(tmp_path):
    import weakref

    bus = LocalBus(tmp_path, topology())
    bus.publish(RAW_HITS, b"x")
    seen = []

    class Spy:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql):
            seen.append((sql, bus._restarting, bus._restart_lock.locked()))
            return self.conn.execute(sql)

    conn = local.connect(bus.path, autocheckpoint=False)
    local._restart(weakref.ref(bus), Spy(conn))
    conn.close()
    # the checkpoint runs flagged and without holding the lock (a group commit waits on the flag, not the lock)
    assert seen == [("PRAGMA wal_checkpoint(RESTART)", True, False)] and bus._restarting is False
    bus.close()
