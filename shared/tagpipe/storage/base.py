"""The Store interface. Every write is batched: callers hand over lists, never one row at a time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tagpipe.models import DeliveryTask, Event, FailedEvent, Outcome, RawHit


@dataclass(frozen=True)
class DeliveredKey:
    destination: str
    dedup_key: str  # "<vendor event name>:<event_id>": what the vendor dedups on
    event_uid: str


@dataclass
class InflightClaim:
    """What the in-flight journal said about keys about to be sent (Store.mark_inflight)."""

    # an earlier attempt left these in flight and its hold is over: send them, labelled as maybe a second copy
    resent: set[str] = field(default_factory=set)
    # an attempt that may still be at the vendor holds these: seconds until they may be sent again
    held: dict[str, float] = field(default_factory=dict)


class Store(ABC):
    @abstractmethod
    def record_hits(self, hits: Sequence[RawHit]) -> None: ...

    @abstractmethod
    def record_events(self, events: Sequence[Event]) -> None:
        """Canonical events, already stripped of raw PII by the caller (see tagpipe.privacy)."""

    @abstractmethod
    def record_outcomes(
        self, outcomes: Sequence[Outcome], delivered: Sequence[DeliveredKey] = ()
    ) -> list[bool]:
        """Record outcomes, at most one per (hit, event, destination): a repeat is ignored.

        `delivered` marks dedup keys as sent, in the same transaction. Returns, per outcome,
        whether it was new.
        """

    @abstractmethod
    def record_failures(self, failures: Sequence[FailedEvent]) -> None: ...

    @abstractmethod
    def delivered_keys(self, destination: str, dedup_keys: Iterable[str]) -> dict[str, str]:
        """Of these dedup keys, the ones already delivered to destination -> the event_uid that was."""

    def mark_inflight(self, destination: str, dedup_keys: Sequence[str], hold: float = 0.0) -> InflightClaim:
        """Journal keys about to be sent, each held for `hold` seconds (the attempt's longest request
        time plus a grace for the vendor to record it), in one transaction with the check: a key
        another attempt holds is not journaled again but reported `held`; one an earlier attempt left
        in flight past its hold is `resent` (that attempt's fate is unknown: the vendor may have it,
        and dedups it by event_id, which it can only do once it has recorded the first copy)."""
        return InflightClaim()

    def clear_inflight(self, destination: str, dedup_keys: Sequence[str], unheld: Sequence[str] = ()) -> None:
        """The vendor answered for these keys: their fate is known. `unheld`: the vendor answered this
        attempt (an error), but an earlier one's fate is still unknown: keep the entry, end its hold."""

    def record_trace(self, debug_token: str, hit_id: str, stage: str, data: dict[str, Any]) -> None:
        """Debug view: one step of a traced hit. Stores without a debug view may ignore it."""

    def close(self) -> None:
        pass


# -- what replay and backfill read from a store (tagpipe.ops.replay drives them)

# (what the query is for, bytes it would scan) -> go ahead? Only stores that bill a scan ask.
Confirm = Callable[[str, int], bool]


@dataclass
class Selection:
    """Rows a source selected: their count before any is read, then the rows."""

    total: int
    rows: Iterable[tuple]


class ReplaySource(Protocol):
    def dead_letters(self, destination: str | None, since: float, until: float) -> Selection:
        """Dead-lettered deliveries to requeue: rows of (row key, DeliveryTask JSON)."""

    def events(self, destination: str, since: float, until: float) -> Selection:
        """Canonical events of [since, until): rows of (Event JSON,)."""

    def requeue(self, rows: Sequence[tuple], tasks: Sequence[DeliveryTask]) -> None:
        """Called before these dead letters are republished: clear what would block the new attempt."""

    def close(self) -> None: ...
