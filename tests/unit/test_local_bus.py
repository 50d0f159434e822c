"""The durable local queue: Pub/Sub semantics on one SQLite file."""

import multiprocessing
import os
import signal

import pytest

from tagpipe.errors import StoreUnavailable
from tagpipe.transport.base import DEAD_LETTER, RAW_HITS, Subscription
from tagpipe.transport.local import LocalBus


def topology(max_attempts=3, ack_deadline=60.0):
    return {
        "transform": Subscription("transform", RAW_HITS, max_attempts, 0.0, 0.0, ack_deadline),
        "dead-letter-archive": Subscription("dead-letter-archive", DEAD_LETTER, 1000, dead_letter_topic=None),
    }


def test_publish_pull_ack(tmp_path):
    bus = LocalBus(tmp_path, topology())
    ids = bus.publish_many(RAW_HITS, [(b"a", {"k": "v"}), (b"b", None)])
    got = bus.pull("transform", 10)
    assert [m.data for m in got] == [b"a", b"b"]
    assert [m.message_id for m in got] == ids
    assert got[0].attributes == {"k": "v"} and got[0].delivery_attempt == 1
    assert bus.pull("transform", 10) == []  # leased
    bus.ack("transform", [m.ack_id for m in got])
    assert bus.backlog() == {}


def test_nack_redelivers_with_attempt_count(tmp_path):
    bus = LocalBus(tmp_path, topology())
    bus.publish(RAW_HITS, b"x")
    first = bus.pull("transform", 1)
    bus.nack("transform", [first[0].ack_id], delay=0)
    second = bus.pull("transform", 1)
    assert second[0].message_id == first[0].message_id
    assert second[0].delivery_attempt == 2


def test_nack_delay_holds_message_back(tmp_path):
    bus = LocalBus(tmp_path, topology())
    bus.publish(RAW_HITS, b"x")
    m = bus.pull("transform", 1)[0]
    bus.nack("transform", [m.ack_id], delay=3600)
    assert bus.pull("transform", 1) == []


def test_expired_lease_is_redelivered(tmp_path):
    bus = LocalBus(tmp_path, topology(ack_deadline=0.0))
    bus.publish(RAW_HITS, b"x")
    first = bus.pull("transform", 1)[0]
    again = bus.pull("transform", 1)[0]  # never acked, deadline passed
    assert again.message_id == first.message_id and again.delivery_attempt == 2
    bus.ack("transform", [first.ack_id])  # a stale ack id does not remove the new lease
    assert bus.backlog()["transform"]["messages"] == 1


def test_dead_letter_after_max_attempts(tmp_path):
    bus = LocalBus(tmp_path, topology(max_attempts=2))
    bus.publish(RAW_HITS, b"poison", {"a": "1"})
    for _ in range(2):
        m = bus.pull("transform", 1)[0]
        bus.nack("transform", [m.ack_id], delay=0)
    assert bus.pull("transform", 1) == []
    dead = bus.pull("dead-letter-archive", 1)
    assert dead[0].data == b"poison"
    assert dead[0].attributes["CloudPubSubDeadLetterSourceSubscription"] == "transform"
    assert dead[0].attributes["a"] == "1"


def _publish_then_die(path, n):
    bus = LocalBus(path, topology())
    for i in range(n):
        bus.publish(RAW_HITS, str(i).encode())
    os.kill(os.getpid(), signal.SIGKILL)


def test_published_messages_survive_sigkill(tmp_path):
    proc = multiprocessing.get_context("spawn").Process(target=_publish_then_die, args=(str(tmp_path), 200))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    bus = LocalBus(tmp_path, topology())
    got = bus.pull("transform", 500)
    assert sorted(int(m.data) for m in got) == list(range(200))


def test_unwritable_queue_raises_store_unavailable(tmp_path):
    bus = LocalBus(tmp_path, topology())
    bus._conn().execute("PRAGMA query_only=1")
    with pytest.raises(StoreUnavailable):
        bus.publish(RAW_HITS, b"x")
