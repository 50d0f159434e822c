"""PubSubBus against the real Pub/Sub emulator: the LocalBus semantics, on Pub/Sub."""

from __future__ import annotations

import json
import time

import pytest

from tagpipe.errors import ConfigError, StoreUnavailable
from tagpipe.transport.base import DEAD_LETTER, DELIVERIES, RAW_HITS, TOPOLOGY
from tagpipe.transport.pubsub import PUBLISH_CHUNK_BYTES, PubSubBus, _publish_chunks, subscription_request
from tests.gcp.conftest import FAST, pull_until, wait_dead_lettered


def test_names_follow_the_prefix():
    bus = PubSubBus("proj", "tp")
    assert bus.topic_path(RAW_HITS) == "projects/proj/topics/tp-raw-hits"
    assert bus.subscription_path("deliver") == "projects/proj/subscriptions/tp-deliver"
    assert bus.topic_path("records-outcomes") == "projects/proj/topics/tp-records-outcomes"


def test_no_project_is_a_config_error():
    with pytest.raises(ConfigError, match="TAGPIPE_GCP_PROJECT"):
        PubSubBus("")
    bus = PubSubBus.from_env({"TAGPIPE_GCP_PROJECT": "p1", "TAGPIPE_TOPIC_PREFIX": "x"})
    assert (bus.project, bus.prefix) == ("p1", "x")


def test_publish_batch_window_comes_from_the_environment(pubsub_emulator):
    assert PubSubBus.from_env({"TAGPIPE_GCP_PROJECT": "p1"}).batch_max_latency == 0.002
    bus = PubSubBus.from_env({"TAGPIPE_GCP_PROJECT": "batch-proj", "TAGPIPE_PUBSUB_BATCH_MS": "0"})
    assert bus.publisher().batch_settings.max_latency == 0  # collect at concurrency 1: no window
    bus.close()
    with pytest.raises(ConfigError, match="TAGPIPE_PUBSUB_BATCH_MS"):
        PubSubBus.from_env({"TAGPIPE_GCP_PROJECT": "p1", "TAGPIPE_PUBSUB_BATCH_MS": "2ms"})


def test_clients_are_built_lazily_and_once(pubsub_emulator):
    bus = PubSubBus("lazy-proj")
    assert bus._publisher is None and bus._subscriber is None  # nothing built at construction
    assert bus.publisher() is bus.publisher()
    assert bus._subscriber is None  # publishing never builds the subscriber (collect's cold start)
    bus.close()


def test_subscription_request_clamps_to_pubsub_bounds():
    bus = PubSubBus("proj")
    req = subscription_request(bus, TOPOLOGY["deliver"], "https://deliver.example/", "invoker@proj.iam.gserviceaccount.com")
    assert req["dead_letter_policy"] == {
        "dead_letter_topic": "projects/proj/topics/tagpipe-dead-letter",
        "max_delivery_attempts": TOPOLOGY["deliver"].max_delivery_attempts,
    }
    assert req["push_config"]["oidc_token"]["service_account_email"].startswith("invoker@")
    archive = subscription_request(bus, TOPOLOGY["dead-letter-archive"])
    assert "dead_letter_policy" not in archive and "push_config" not in archive
    from tagpipe.transport.base import Subscription

    odd = subscription_request(bus, Subscription("x-sub", RAW_HITS, max_delivery_attempts=2, ack_deadline=1,
                                                 max_backoff=5000))
    assert odd["dead_letter_policy"]["max_delivery_attempts"] == 5
    assert odd["ack_deadline_seconds"] == 10
    assert odd["retry_policy"]["maximum_backoff"] == {"seconds": 600}


def test_publish_pull_ack(bus):
    before = time.time()
    ids = bus.publish_many(RAW_HITS, [(b'{"n":1}', {"k": "v"}), (b'{"n":2}', None), (b'{"n":3}', {"n": 3})])
    assert len(set(ids)) == 3
    messages = pull_until(bus, "transform", 3)
    assert sorted(m.data for m in messages) == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    assert {m.message_id for m in messages} == set(ids)
    by_data = {m.data: m for m in messages}
    assert dict(by_data[b'{"n":1}'].attributes) == {"k": "v"}
    assert dict(by_data[b'{"n":3}'].attributes) == {"n": "3"}  # attribute values become strings
    for m in messages:
        assert m.delivery_attempt == 1
        assert before - 5 <= m.publish_time <= time.time() + 5
        assert m.ack_id
    bus.ack("transform", [m.ack_id for m in messages])
    assert bus.pull("transform", 10, wait=1.0) == []


def test_other_subscriptions_do_not_see_the_topic(bus):
    bus.publish(RAW_HITS, b"x")
    assert pull_until(bus, "transform", 1)
    assert bus.pull("deliver", 10, wait=0.5) == []


def test_nack_redelivers_with_attempt_2(bus):
    bus.publish(RAW_HITS, b"again")
    (first,) = pull_until(bus, "transform", 1)
    assert first.delivery_attempt == 1
    bus.nack("transform", [first.ack_id])
    (second,) = pull_until(bus, "transform", 1)
    assert second.message_id == first.message_id
    assert second.delivery_attempt == 2
    bus.ack("transform", [second.ack_id])


def test_nack_with_delay_holds_the_message_back(bus):
    bus.publish(RAW_HITS, b"later")
    (first,) = pull_until(bus, "transform", 1)
    nacked_at = time.monotonic()
    bus.nack("transform", [first.ack_id], delay=2.5)
    assert bus.pull("transform", 10, wait=1.0) == []  # still leased
    (again,) = pull_until(bus, "transform", 1, timeout=10)
    assert time.monotonic() - nacked_at >= 2.0
    assert again.delivery_attempt == 2
    bus.ack("transform", [again.ack_id])


def test_dead_letter_after_max_attempts(bus):
    bus.publish(RAW_HITS, b"poison", {"hit": "h1"})
    attempts = []
    for _ in range(5):
        (m,) = pull_until(bus, "transform", 1)
        attempts.append(m.delivery_attempt)
        bus.nack("transform", [m.ack_id])
    assert attempts == [1, 2, 3, 4, 5]
    (dead,) = wait_dead_lettered(bus, "transform")
    assert dead.data == b"poison"
    assert dead.attributes["hit"] == "h1"
    # the same attributes LocalBus writes, with the topology's short subscription name
    assert dead.attributes["CloudPubSubDeadLetterSourceSubscription"] == "transform"
    assert dead.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    bus.ack("dead-letter-archive", [dead.ack_id])


def test_deliveries_carry_the_destination_attribute(bus):
    bus.publish(DELIVERIES, json.dumps({"destination": "meta", "event_uid": "h:0"}).encode())
    bus.publish(DELIVERIES, b"opaque", {"destination": "ga4"})
    got = {m.attributes["destination"]: m for m in pull_until(bus, "deliver", 2)}
    assert set(got) == {"meta", "ga4"}
    with pytest.raises(ValueError, match="destination"):
        bus.publish(DELIVERIES, b"no route")
    bus.ack("deliver", [m.ack_id for m in got.values()])


def test_per_destination_topology_routes_each_task_to_its_destinations_topic(bus):
    bus.ensure_topology(destinations=["meta", "ga4"])
    bus.publish_many(DELIVERIES, [(b"m1", {"destination": "meta"}), (b"g1", {"destination": "ga4"}),
                                  (json.dumps({"destination": "meta"}).encode(), None)])
    meta = pull_until(bus, "deliver-meta", 2)
    ga4 = pull_until(bus, "deliver-ga4", 1)
    assert sorted(m.attributes["destination"] for m in meta) == ["meta", "meta"]
    assert [m.data for m in ga4] == [b"g1"]
    assert bus.pull("deliver-ga4", 10, wait=0.5) == []  # nothing of Meta's reached GA4's subscription
    bus.ack("deliver-meta", [m.ack_id for m in meta])
    bus.ack("deliver-ga4", [m.ack_id for m in ga4])
    with pytest.raises(StoreUnavailable, match="deliveries-tiktok"):  # not in the topology: no topic
        bus.publish(DELIVERIES, b"t", {"destination": "tiktok"})


def test_publish_to_a_missing_topic_is_store_unavailable(bus):
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="no-such-topic"):
        bus.publish("no-such-topic", b"x")
    assert time.monotonic() - started < 5  # NOT_FOUND is not retried


def test_publish_when_pubsub_is_down_is_store_unavailable(pubsub_emulator, monkeypatch):
    from tests.gcp.conftest import free_port

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")  # nothing listens there
    down = PubSubBus("down-proj", publish_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        down.publish(RAW_HITS, b"x")
    assert time.monotonic() - started < 10
    down.close()


def test_ensure_topology_is_idempotent(bus, project):
    bus.ensure_topology(extra_topics=["records-outcomes"])
    topics = {t.name for t in bus.publisher().list_topics(request={"project": f"projects/{project}"})}
    assert {bus.topic_path(t) for t in (RAW_HITS, DELIVERIES, DEAD_LETTER, "records-outcomes")} <= topics
    deliver = bus.subscriber().get_subscription(subscription=bus.subscription_path("deliver"))
    assert deliver.dead_letter_policy.dead_letter_topic == bus.topic_path(DEAD_LETTER)
    assert deliver.dead_letter_policy.max_delivery_attempts == 5
    assert deliver.retry_policy.maximum_backoff.seconds == 1


def test_without_a_batch_window_publishes_go_straight_to_the_api_in_order(pubsub_emulator, project):
    """collect at concurrency 1 (TAGPIPE_PUBSUB_BATCH_MS = 0): Publish requests without the batching
    client; a large publish_many is cut to Pub/Sub's 1,000 messages a request, ids come back in order."""
    bus = PubSubBus(project, "tagpipe", FAST, publish_timeout=5.0, batch_max_latency=0.0)
    bus.ensure_topology(destinations=["meta", "ga4"])
    (hit_id,) = bus.publish_many(RAW_HITS, [(b"hit", {"h": "1"})])
    items = [(f"t{i}".encode(), {"destination": "meta" if i % 3 else "ga4"}) for i in range(2_500)]
    ids = bus.publish_many(DELIVERIES, items)
    assert len(set(ids)) == 2_500 and hit_id not in ids and all(ids)
    meta = pull_until(bus, "deliver-meta", 1_666, timeout=30)
    ga4 = pull_until(bus, "deliver-ga4", 834, timeout=30)
    by_id = {m.message_id: m.data for m in meta + ga4}
    assert [by_id[i] for i in ids] == [data for data, _ in items]  # each id is its own message's
    assert [m.data for m in pull_until(bus, "transform", 1)] == [b"hit"]
    with pytest.raises(StoreUnavailable, match="no-such-topic"):
        bus.publish("no-such-topic", b"x")
    bus.close()


def test_publish_chunks_keep_within_the_request_limits():
    assert _publish_chunks([0, 1, 2], [10, 10, 10]) == [[0, 1, 2]]
    assert [len(c) for c in _publish_chunks(list(range(2_001)), [1] * 2_001)] == [1_000, 1_000, 1]
    big = PUBLISH_CHUNK_BYTES // 2 + 1
    assert _publish_chunks([5, 6, 7], [big, big, 1]) == [[5], [6, 7]]
    assert _publish_chunks([9], [PUBLISH_CHUNK_BYTES * 2]) == [[9]]  # one oversized message: Pub/Sub says no
