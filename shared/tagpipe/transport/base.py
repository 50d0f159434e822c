"""The Bus interface and the pipeline's topology (topics and their subscriptions).

    collect --publish--> raw-hits --[transform]--> deliveries --[deliver]--> vendors
                                                                   \\
               any subscription, after max_delivery_attempts --> dead-letter --[dead-letter-archive]

On Google Cloud each destination has a deliveries topic of its own, `deliveries-<id>`, with one
subscription, `deliver-<id>` (`per_destination`), so one slow or failing vendor backs up, retries
and dead-letters on its own. Topics, not filtered subscriptions on one topic: Pub/Sub bills every
subscription for each message on its topic, the ones its filter drops included, so with d
destinations a filtered topic bills each task d times over (d² per event). The Bus still publishes
to `deliveries` with a `destination` attribute; the Pub/Sub bus routes each task to its topic. The
local bus keeps the single `deliver` subscription.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

RAW_HITS = "raw-hits"
DELIVERIES = "deliveries"
DEAD_LETTER = "dead-letter"


@dataclass(frozen=True)
class Subscription:
    name: str
    topic: str
    max_delivery_attempts: int = 10  # then the message moves to the dead-letter topic
    min_backoff: float = 1.0  # seconds, for nacks that name no delay (Pub/Sub retry policy)
    max_backoff: float = 600.0
    ack_deadline: float = 60.0  # a pulled message not acked by then is redelivered
    dead_letter_topic: str | None = DEAD_LETTER


TOPOLOGY: dict[str, Subscription] = {
    s.name: s
    for s in (
        Subscription("transform", RAW_HITS),
        Subscription("deliver", DELIVERIES),
        Subscription("dead-letter-archive", DEAD_LETTER, max_delivery_attempts=1000, dead_letter_topic=None),
    )
}


ROUTING_ATTRIBUTE = "destination"  # set on every delivery task
DELIVER_PREFIX = "deliver-"


def deliver_subscription(destination: str) -> str:
    """The destination's deliver subscription on Google Cloud (Terraform names it the same)."""
    return DELIVER_PREFIX + destination


def destination_topic(destination: str) -> str:
    """The destination's deliveries topic on Google Cloud (Terraform names it the same)."""
    return f"{DELIVERIES}-{destination}"


def destination_of(subscription: str) -> str | None:
    """"deliver-ga4" -> "ga4"; None for any other subscription."""
    if subscription.startswith(DELIVER_PREFIX) and len(subscription) > len(DELIVER_PREFIX):
        return subscription[len(DELIVER_PREFIX):]
    return None


def stage_subscription(subscription: str) -> str:
    """The stage a subscription feeds: "deliver-ga4" -> "deliver" (what dead-letter sources report)."""
    return "deliver" if destination_of(subscription) else subscription


def per_destination(topology: Mapping[str, Subscription], destinations: Sequence[str]) -> dict[str, Subscription]:
    """`topology` with `deliver` replaced by one subscription per destination, each on the destination's
    own topic, same policies."""
    out = {k: v for k, v in topology.items() if k != "deliver"}
    base = topology["deliver"]
    for dest in destinations:
        name = deliver_subscription(dest)
        out[name] = replace(base, name=name, topic=destination_topic(dest))
    return out


@dataclass(frozen=True)
class Message:
    message_id: str
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    delivery_attempt: int = 1  # 1 on first delivery, as Pub/Sub counts it
    ack_id: str = ""
    publish_time: float = 0.0


class Bus(ABC):
    """At-least-once delivery between stages. Consumers must be idempotent."""

    publish_is_fast = False  # True: publish may run on the event loop (no network round trip)
    topology: dict[str, Subscription]

    @abstractmethod
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        """Durably publish one message; returns its id. Raises StoreUnavailable if it cannot."""

    def publish_many(
        self, topic: str, items: Sequence[tuple[bytes, Mapping[str, str] | None]]
    ) -> list[str]:
        return [self.publish(topic, data, attrs) for data, attrs in items]

    @abstractmethod
    def pull(self, subscription: str, max_messages: int = 100, wait: float = 0.0) -> list[Message]:
        """Lease up to max_messages; waits up to `wait` seconds for the first one."""

    @abstractmethod
    def ack(self, subscription: str, ack_ids: Sequence[str]) -> None: ...

    @abstractmethod
    def nack(self, subscription: str, ack_ids: Sequence[str], delay: float | None = None) -> None:
        """Redeliver later: after `delay` seconds, or the subscription's backoff when None."""

    def close(self) -> None:
        pass


def exponential_backoff(attempt: int, min_backoff: float, max_backoff: float) -> float:
    """Seconds before attempt `attempt + 1`: min_backoff doubled per earlier attempt, capped at
    max_backoff (Pub/Sub's retry policy grows the same way between its two bounds)."""
    return min(max_backoff, min_backoff * (2 ** max(0, attempt - 1)))


def backoff_delay(sub: Subscription, attempt: int) -> float:
    """The subscription's backoff for a nack that names no delay."""
    return exponential_backoff(attempt, sub.min_backoff, sub.max_backoff)
