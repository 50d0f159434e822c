"""The Bus on Google Cloud Pub/Sub: the production twin of `tagpipe.transport.local.LocalBus`.

    collect --publish--> {prefix}-raw-hits --[{prefix}-transform]--> {prefix}-deliveries --[{prefix}-deliver]
                                 any subscription, after max_delivery_attempts --> {prefix}-dead-letter

Names: the topology's short names map to `projects/{project}/topics/{prefix}-{topic}` and
`projects/{project}/subscriptions/{prefix}-{subscription}`. Any other topic name (the
`records-*` topics the BigQuery store writes to) maps the same way.

Semantics kept from LocalBus:
- `publish` returns only once Pub/Sub has acknowledged the message (the future is resolved), so a
  204 from collect means the hit is durable. Failure raises `StoreUnavailable` (collect answers 503).
- `delivery_attempt` counts from 1. Pub/Sub only counts attempts on subscriptions with a dead-letter
  policy; elsewhere it reports 0, which we report as 1.
- Dead-lettered messages carry `CloudPubSubDeadLetterSourceSubscription` = the stage's short
  name (Pub/Sub writes the full subscription id `{prefix}-deliver-ga4`; we strip the prefix and
  the destination so stage code sees what LocalBus gives it: `deliver`).
- `nack(delay)` sets the ack deadline to `delay` (so Pub/Sub redelivers after it, then applies the
  retry policy's backoff); `nack()` with no delay hands the message straight to the retry policy.
- Delivery tasks always carry a `destination` attribute. With a per-destination topology (what
  Terraform creates, `tagpipe.transport.base.per_destination`) a task published to `deliveries` goes
  to its destination's topic, `{prefix}-deliveries-<id>`, which only `deliver-<id>` reads.

Clients are built lazily and once (cold starts: collect pays for the publisher only; the
subscriber, used by the scheduled drains, pull-mode workers and tests, is never imported by a
push-mode function).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tagpipe.errors import ConfigError, StoreUnavailable
from tagpipe.settings import Settings
from tagpipe.transport.base import (
    DEAD_LETTER,
    DELIVERIES,
    ROUTING_ATTRIBUTE,
    TOPOLOGY,
    Bus,
    Message,
    Subscription,
    destination_topic,
    per_destination,
    stage_subscription,
)

if TYPE_CHECKING:  # pragma: no cover
    from google.cloud import pubsub_v1

DEAD_LETTER_SOURCE = "CloudPubSubDeadLetterSourceSubscription"

# Publisher batching, tuned for collect: each request publishes one hit and waits for the ack, so
# a batch only ever holds the hits that arrive within the same couple of milliseconds on one
# instance (concurrency > 1). A longer window would add its full length to every hit's latency; with
# one request per instance (concurrency 1) nothing can join a batch, so terraform sets
# TAGPIPE_PUBSUB_BATCH_MS = 0 there, and a zero window publishes straight through the API client: one
# Publish request per call and topic, no batch objects or commit threads (collect on gen2's server
# against the emulator: 0.72-1.06 ms of CPU a hit against 1.18-1.91 through the batching client,
# `python -m benchmarks.cost --measure-gcp`).
BATCH_MAX_MESSAGES = 100
BATCH_MAX_BYTES = 1_000_000  # well under Pub/Sub's 10 MB request limit
BATCH_MAX_LATENCY = 0.002  # seconds
# Flow control: under a burst, block the publishing thread instead of growing memory without bound.
FLOW_MAX_MESSAGES = 1_000
FLOW_MAX_BYTES = 20_000_000
PUBLISH_TIMEOUT = 8.0  # seconds to wait for Pub/Sub to acknowledge a publish
ACK_CHUNK = 1_000  # ack ids per acknowledge / modify_ack_deadline request (API request limit 512 KB)
# Pub/Sub's limits per Publish request: 1,000 messages, 10 MB
PUBLISH_CHUNK_MESSAGES, PUBLISH_CHUNK_BYTES = 1_000, 9_000_000

# Pub/Sub's own bounds (the API rejects values outside them).
MIN_ACK_DEADLINE, MAX_ACK_DEADLINE = 10, 600
MIN_DELIVERY_ATTEMPTS, MAX_DELIVERY_ATTEMPTS = 5, 100
MAX_BACKOFF = 600


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class PubSubBus(Bus):
    def __init__(
        self,
        project: str,
        prefix: str = "tagpipe",
        topology: Mapping[str, Subscription] = TOPOLOGY,
        *,
        publish_timeout: float = PUBLISH_TIMEOUT,
        batch_max_latency: float = BATCH_MAX_LATENCY,
        publisher: pubsub_v1.PublisherClient | None = None,
        subscriber: pubsub_v1.SubscriberClient | None = None,
    ) -> None:
        if not project:
            raise ConfigError(
                "TAGPIPE_GCP_PROJECT", "no Google Cloud project id given", fix="set TAGPIPE_GCP_PROJECT"
            )
        self.project = project
        self.prefix = prefix
        self.topology = dict(topology)
        self.publish_timeout = publish_timeout
        self.batch_max_latency = batch_max_latency
        self._publisher = publisher
        self._subscriber = subscriber
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> PubSubBus:
        return cls.from_settings(Settings.load(environ), **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> PubSubBus:
        """TAGPIPE_GCP_PROJECT (or GOOGLE_CLOUD_PROJECT), TAGPIPE_TOPIC_PREFIX and TAGPIPE_PUBSUB_BATCH_MS
        (the publisher's batch window)."""
        kwargs.setdefault("batch_max_latency", settings.pubsub_batch_ms / 1000)
        return cls(settings.gcp_project, settings.topic_prefix, **kwargs)

    # -- names
    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{self.prefix}-{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{self.prefix}-{subscription}"

    # -- clients, built once
    def publisher(self) -> pubsub_v1.PublisherClient:
        if self._publisher is None:
            with self._lock:
                if self._publisher is None:
                    from google.cloud import pubsub_v1

                    self._publisher = pubsub_v1.PublisherClient(
                        batch_settings=pubsub_v1.types.BatchSettings(
                            max_messages=BATCH_MAX_MESSAGES,
                            max_bytes=BATCH_MAX_BYTES,
                            max_latency=self.batch_max_latency,
                        ),
                        publisher_options=pubsub_v1.types.PublisherOptions(
                            flow_control=pubsub_v1.types.PublishFlowControl(
                                message_limit=FLOW_MAX_MESSAGES,
                                byte_limit=FLOW_MAX_BYTES,
                                limit_exceeded_behavior=pubsub_v1.types.LimitExceededBehavior.BLOCK,
                            ),
                        ),
                    )
        return self._publisher

    def subscriber(self) -> pubsub_v1.SubscriberClient:
        if self._subscriber is None:
            with self._lock:
                if self._subscriber is None:
                    from google.cloud import pubsub_v1

                    self._subscriber = pubsub_v1.SubscriberClient()
        return self._subscriber

    # -- publish
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        return self.publish_many(topic, [(data, attributes)])[0]

    def publish_many(self, topic: str, items: Sequence[tuple[bytes, Mapping[str, str] | None]]) -> list[str]:
        if not items:
            return []
        from google.api_core import exceptions as gexc
        from google.api_core.retry import Retry, if_exception_type

        routed = topic == DELIVERIES and "deliver" not in self.topology  # one topic per destination
        messages = []  # (topic path, data, attributes), in the caller's order
        for data, attrs in items:
            attrs = _routed(topic, data, attrs)
            dest = destination_topic(attrs[ROUTING_ATTRIBUTE]) if routed else topic
            messages.append((self.topic_path(dest), data, attrs))
        # the client's default retry gives up after 600 s; collect's caller cannot wait that long
        retry = Retry(
            predicate=if_exception_type(*_transient_errors()),
            initial=0.05,
            maximum=1.0,
            multiplier=2.0,
            timeout=self.publish_timeout,
        )
        futures = []
        try:
            if self.batch_max_latency == 0:
                return self._publish_direct(messages, retry)
            publisher = self.publisher()
            for path, data, attrs in messages:
                futures.append(publisher.publish(path, data, retry=retry, timeout=self.publish_timeout, **attrs))
            # every future resolved before we return: the caller may now tell its client "stored"
            return [f.result(timeout=self.publish_timeout) for f in futures]
        except (gexc.GoogleAPIError, TimeoutError, RuntimeError) as exc:
            # GoogleAPICallError: the RPC failed after retries; TimeoutError: no answer in time;
            # RuntimeError: the publisher was stopped.
            for f in futures:
                f.cancel()
            raise StoreUnavailable(f"pubsub: publish to {messages[0][0]} failed: {exc}") from exc

    def _publish_direct(self, messages: list[tuple[str, bytes, dict[str, str]]], retry) -> list[str]:
        """Publish requests straight through the API client, per topic in chunks within Pub/Sub's
        limits; returns the message ids in the order given. Returns once Pub/Sub has them all."""
        from google.pubsub_v1.types import PubsubMessage

        api = self.publisher().api
        ids: list[str] = [""] * len(messages)
        by_topic: dict[str, list[int]] = {}
        for i, (path, _, _) in enumerate(messages):
            by_topic.setdefault(path, []).append(i)
        for path, indexes in by_topic.items():
            for chunk in _publish_chunks(indexes, [len(messages[i][1]) for i in indexes]):
                response = api.publish(
                    topic=path, messages=[PubsubMessage(data=messages[i][1], attributes=messages[i][2]) for i in chunk],
                    retry=retry, timeout=self.publish_timeout,
                )
                for i, message_id in zip(chunk, response.message_ids, strict=True):
                    ids[i] = message_id
        return ids

    # -- consume (pull mode: the scheduled drains, local workers, tests, the replay tool)
    def pull(self, subscription: str, max_messages: int = 100, wait: float = 0.0) -> list[Message]:
        from google.api_core import exceptions as gexc

        try:
            response = self.subscriber().pull(
                request={"subscription": self.subscription_path(subscription), "max_messages": max_messages},
                # Pub/Sub holds an empty pull open until the deadline: `wait` bounds it
                timeout=max(wait, 0.5),
                retry=None,
            )
        except gexc.DeadlineExceeded:
            return []
        except gexc.GoogleAPIError as exc:
            raise StoreUnavailable(f"pubsub: pull from {subscription} failed: {exc}") from exc
        return [self._message(r) for r in response.received_messages]

    def _message(self, received: Any) -> Message:
        msg = received.message
        attrs = dict(msg.attributes)
        source = attrs.get(DEAD_LETTER_SOURCE)
        if source and source.startswith(self.prefix + "-"):
            attrs[DEAD_LETTER_SOURCE] = stage_subscription(source[len(self.prefix) + 1 :])
        publish_time = msg.publish_time.timestamp() if msg.publish_time else 0.0
        return Message(
            message_id=msg.message_id,
            data=bytes(msg.data),
            attributes=attrs,
            delivery_attempt=max(1, int(received.delivery_attempt or 0)),
            ack_id=received.ack_id,
            publish_time=publish_time,
        )

    def ack(self, subscription: str, ack_ids: Sequence[str]) -> None:
        self._settle(subscription, ack_ids, None)

    def nack(self, subscription: str, ack_ids: Sequence[str], delay: float | None = None) -> None:
        seconds = 0 if delay is None else int(_clamp(math.ceil(delay), 0, MAX_ACK_DEADLINE))
        self._settle(subscription, ack_ids, seconds)

    def _settle(self, subscription: str, ack_ids: Sequence[str], deadline: int | None) -> None:
        if not ack_ids:
            return
        from google.api_core import exceptions as gexc

        path = self.subscription_path(subscription)
        subscriber = self.subscriber()
        try:
            for start in range(0, len(ack_ids), ACK_CHUNK):
                chunk = list(ack_ids[start : start + ACK_CHUNK])
                if deadline is None:
                    subscriber.acknowledge(request={"subscription": path, "ack_ids": chunk})
                else:
                    subscriber.modify_ack_deadline(
                        request={"subscription": path, "ack_ids": chunk, "ack_deadline_seconds": deadline}
                    )
        except gexc.GoogleAPIError as exc:
            # the messages will simply be redelivered when their lease runs out
            raise StoreUnavailable(f"pubsub: settling messages on {subscription} failed: {exc}") from exc

    # -- provisioning (the emulator and tests; Terraform owns production)
    def ensure_topology(
        self,
        push_endpoints: Mapping[str, str] | None = None,
        extra_topics: Sequence[str] = (),
        oidc_service_account: str | None = None,
        destinations: Sequence[str] = (),
    ) -> None:
        """Create every topic and subscription of the topology if missing (idempotent).

        `push_endpoints` maps subscription name -> URL to make it a push subscription; the
        `deliver` entry also serves the per-destination subscriptions. With `destinations`, each
        gets a `deliveries-<id>` topic and a `deliver-<id>` subscription instead of `deliver` (what
        Terraform creates), and this bus routes delivery tasks to them from then on.
        Values outside Pub/Sub's bounds are clamped to them (at least 5 delivery attempts, ack
        deadline 10..600 s, backoff up to 600 s).
        """
        from google.api_core import exceptions as gexc

        push_endpoints = dict(push_endpoints or {})
        if destinations and "deliver" in self.topology:
            self.topology = per_destination(self.topology, destinations)
        topology = self.topology
        topics: list[str] = []
        for sub in topology.values():
            for topic in (sub.topic, sub.dead_letter_topic):
                if topic and topic not in topics:
                    topics.append(topic)
        topics += [t for t in extra_topics if t not in topics]
        publisher, subscriber = self.publisher(), self.subscriber()
        for topic in topics:
            try:
                publisher.create_topic(request={"name": self.topic_path(topic)})
            except gexc.AlreadyExists:
                pass
        for sub in topology.values():
            endpoint = push_endpoints.get(sub.name) or push_endpoints.get(stage_subscription(sub.name))
            request = subscription_request(self, sub, endpoint, oidc_service_account)
            try:
                subscriber.create_subscription(request=request)
            except gexc.AlreadyExists:
                pass

    def close(self) -> None:
        with self._lock:
            publisher, self._publisher = self._publisher, None
            subscriber, self._subscriber = self._subscriber, None
        if publisher is not None:
            publisher.stop()  # flushes anything still batched
        if subscriber is not None:
            subscriber.close()


def subscription_request(
    bus: PubSubBus,
    sub: Subscription,
    push_endpoint: str | None = None,
    oidc_service_account: str | None = None,
) -> dict[str, Any]:
    """The CreateSubscription request for one topology entry (also what Terraform mirrors)."""
    request: dict[str, Any] = {
        "name": bus.subscription_path(sub.name),
        "topic": bus.topic_path(sub.topic),
        "ack_deadline_seconds": int(_clamp(sub.ack_deadline, MIN_ACK_DEADLINE, MAX_ACK_DEADLINE)),
        "retry_policy": {
            "minimum_backoff": {"seconds": int(_clamp(sub.min_backoff, 0, MAX_BACKOFF))},
            "maximum_backoff": {"seconds": int(_clamp(sub.max_backoff, 0, MAX_BACKOFF))},
        },
    }
    if sub.dead_letter_topic:
        request["dead_letter_policy"] = {
            "dead_letter_topic": bus.topic_path(sub.dead_letter_topic),
            "max_delivery_attempts": int(
                _clamp(sub.max_delivery_attempts, MIN_DELIVERY_ATTEMPTS, MAX_DELIVERY_ATTEMPTS)
            ),
        }
    if push_endpoint:
        push: dict[str, Any] = {"push_endpoint": push_endpoint}
        if oidc_service_account:
            push["oidc_token"] = {"service_account_email": oidc_service_account}
        request["push_config"] = push
    return request


def _transient_errors() -> tuple[type[Exception], ...]:
    """The status codes Pub/Sub's own publisher retries on."""
    from google.api_core import exceptions as gexc

    return (
        gexc.Aborted,
        gexc.Cancelled,
        gexc.DeadlineExceeded,
        gexc.InternalServerError,
        gexc.ResourceExhausted,
        gexc.ServiceUnavailable,
        gexc.Unknown,
    )


def _publish_chunks(indexes: list[int], sizes: list[int]) -> list[list[int]]:
    """`indexes` cut into runs that fit one Publish request (message count and bytes)."""
    chunks: list[list[int]] = [[]]
    total = 0
    for i, size in zip(indexes, sizes, strict=True):
        if chunks[-1] and (len(chunks[-1]) == PUBLISH_CHUNK_MESSAGES or total + size > PUBLISH_CHUNK_BYTES):
            chunks.append([])
            total = 0
        chunks[-1].append(i)
        total += size
    return chunks


def _routed(topic: str, data: bytes, attrs: Mapping[str, str] | None) -> dict[str, str]:
    """Attributes as Pub/Sub wants them (str -> str), plus the routing attribute on deliveries."""
    out = {str(k): str(v) for k, v in (attrs or {}).items()}
    if topic == DELIVERIES and ROUTING_ATTRIBUTE not in out:
        try:
            destination = json.loads(data).get(ROUTING_ATTRIBUTE)
        except (ValueError, AttributeError, UnicodeDecodeError):
            destination = None
        if not destination:
            raise ValueError(
                f"a message on {DELIVERIES!r} needs a {ROUTING_ATTRIBUTE!r} attribute"
                " (or a JSON body with a destination field)"
            )
        out[ROUTING_ATTRIBUTE] = str(destination)
    return out


__all__ = ["PubSubBus", "ROUTING_ATTRIBUTE", "DEAD_LETTER", "subscription_request"]
