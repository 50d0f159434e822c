"""Where every stage settles its outcomes: written at most once per (hit, event, destination), then counted.

The store keeps the first outcome of a pair and ignores a repeat (Store.record_outcomes says which were
new). Only the outcomes it wrote are logged as `outcome_counts`; a repeat is counted apart as the
unexpected reason `second_outcome` (a log line and a failed event), never as if it had been written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from tagpipe.models import FailedEvent, Outcome
from tagpipe.monitoring.logs import log_outcomes, log_unexpected
from tagpipe.reasons import SECOND_OUTCOME
from tagpipe.storage.base import DeliveredKey, Store


def settle_outcomes(
    store: Store,
    outcomes: Sequence[Outcome],
    delivered: Sequence[DeliveredKey] = (),
    *,
    stage: Literal["collect", "transform", "deliver"],
    weight: int = 1,
) -> list[Outcome]:
    """Record the outcomes (and delivered keys, in the same transaction) and log them; returns those
    written. `weight`: how many requests each outcome stands for (collect's flood summaries)."""
    outcomes = list(outcomes)
    if not outcomes and not delivered:
        return []
    fresh = store.record_outcomes(outcomes, delivered)
    written = [o for o, new in zip(outcomes, fresh, strict=True) if new]
    repeats = [o for o, new in zip(outcomes, fresh, strict=True) if not new]
    log_outcomes(written, weight)
    if repeats:
        log_unexpected(repeats, SECOND_OUTCOME)
        store.record_failures([
            FailedEvent(stage=stage, hit_id=o.hit_id, event_uid=o.event_uid, destination=o.destination,
                        error_code=SECOND_OUTCOME,
                        message=f"{o.outcome.value} ({o.reason or 'no reason'}) not recorded: the pair had an outcome")
            for o in repeats
        ])
    return written
