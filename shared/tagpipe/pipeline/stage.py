"""What a consuming stage returns for each message, and the loop that drives stages locally
(`run_worker`; the scheduled drain on GCP, `tagpipe.pipeline.drain`, settles batches the same way)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tagpipe.errors import StoreUnavailable
from tagpipe.transport.base import Bus, Message

log = logging.getLogger("tagpipe.worker")


@dataclass(frozen=True)
class Decision:
    ack: bool
    delay: float | None = None  # for a nack: seconds until redelivery (None: the backoff policy)
    throttled: bool = False


ACK = Decision(True)
NACK = Decision(False)


def nack(delay: float | None = None, throttled: bool = False) -> Decision:
    return Decision(False, delay, throttled)


class Stage(Protocol):
    subscription: str

    def handle(self, messages: Sequence[Message]) -> dict[str, Decision]: ...


def settle(bus: Bus, subscription: str, messages: Sequence[Message], decisions: dict[str, Decision]) -> None:
    acks = [m.ack_id for m in messages if decisions.get(m.ack_id, NACK).ack]
    bus.ack(subscription, acks)
    by_delay: dict[float | None, list[str]] = {}
    for m in messages:
        d = decisions.get(m.ack_id, NACK)
        if not d.ack:
            by_delay.setdefault(d.delay, []).append(m.ack_id)
    for delay, ids in by_delay.items():
        bus.nack(subscription, ids, delay)


def process(bus: Bus, stage: Stage, messages: Sequence[Message], subscription: str | None = None) -> dict[str, Decision]:
    """Handle one pulled batch and settle it on `subscription` (default: the stage's own).

    A crash in handle nacks the batch, never loses it; a failed settle is logged and the messages
    come back when their lease runs out. Returns the decisions (what was settled, if it could be).
    """
    subscription = subscription or stage.subscription
    try:
        decisions = stage.handle(messages)
    except Exception:
        log.exception("stage %s failed on a batch of %d; nacking it", subscription, len(messages))
        decisions = {m.ack_id: NACK for m in messages}
    try:
        settle(bus, subscription, messages, decisions)
    except StoreUnavailable as exc:
        log.error("settle failed on %s: %s (messages will be redelivered)", subscription, exc)
        raise
    return decisions


def run_worker(bus: Bus, stage: Stage, stop: threading.Event, batch: int = 500, wait: float = 0.5,
               linger: float = 0.0) -> None:
    """Pull, handle, settle, until `stop` is set. A crash in handle nacks the batch, never loses it."""
    while not stop.is_set():
        try:
            messages = bus.pull(stage.subscription, batch, wait)
            if messages and linger and len(messages) < batch:
                stop.wait(linger)  # let a batch fill: fewer, fuller vendor requests
                messages += bus.pull(stage.subscription, batch - len(messages), 0)
        except StoreUnavailable as exc:
            log.error("pull failed on %s: %s", stage.subscription, exc)
            stop.wait(1.0)
            continue
        if not messages:
            continue
        try:
            process(bus, stage, messages)
        except StoreUnavailable:
            pass  # logged by process; the leases run out and the messages come back
