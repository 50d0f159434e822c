"""dead-letter archive: every message that reaches the dead-letter topic becomes a stored record.

Deliver dead-letters explicitly (and records the outcome itself); the bus also dead-letters on its
own when a message exhausts its attempts without being settled (a crashing consumer). For those,
this is where the `dead_lettered` outcome gets recorded, so no task ends without one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError

from tagpipe.errors import StoreUnavailable
from tagpipe.models import DeliveryTask, FailedEvent, Outcome, OutcomeKind, RawHit
from tagpipe.pipeline.outcomes import settle_outcomes
from tagpipe.pipeline.stage import ACK, Decision, nack
from tagpipe.privacy import scrub_text
from tagpipe.runtime import Runtime
from tagpipe.transport.base import Message

log = logging.getLogger("tagpipe.archive")
SOURCE = "CloudPubSubDeadLetterSourceSubscription"


class DeadLetterArchive:
    subscription = "dead-letter-archive"

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def handle(self, messages: Sequence[Message]) -> dict[str, Decision]:
        failures: list[FailedEvent] = []
        outcomes: list[Outcome] = []
        for m in messages:
            source = m.attributes.get(SOURCE, "unknown")
            reason = m.attributes.get("reason", "max_attempts")
            text = m.data.decode("utf-8", "replace")
            if source == "deliver":
                try:
                    t = DeliveryTask.model_validate_json(m.data)
                except ValidationError:
                    t = None
                if t is not None:
                    failures.append(FailedEvent(stage="deliver", hit_id=t.hit_id, event_uid=t.event_uid,
                                                destination=t.destination, error_code="dead_lettered",
                                                message=f"dead-lettered after {m.attributes.get('CloudPubSubDeadLetterSourceDeliveryCount', '?')}"
                                                f" attempts: {reason} {m.attributes.get('detail', '')}".strip(),
                                                payload=text))
                    outcomes.append(Outcome(hit_id=t.hit_id, event_uid=t.event_uid, destination=t.destination,
                                            outcome=OutcomeKind.DEAD_LETTERED, reason=reason,
                                            detail=m.attributes.get("detail", "delivery attempts exhausted"),
                                            event_name=t.event_name))
                    continue
            hit_id = m.message_id
            if source == "transform":
                try:
                    hit_id = RawHit.model_validate_json(m.data).hit_id
                except ValidationError:
                    pass
                outcomes.append(Outcome(hit_id=hit_id, outcome=OutcomeKind.DEAD_LETTERED, reason=reason,
                                        detail="transform could not process this hit"))
            payload = text if self.rt.config.privacy.store_raw_pii else scrub_text(text)
            failures.append(FailedEvent(stage="transform" if source == "transform" else "deliver", hit_id=hit_id,
                                        error_code="dead_lettered", message=f"from {source}: {reason}", payload=payload))
        try:
            self.rt.store.record_failures(failures)
            settle_outcomes(self.rt.store, outcomes, stage="deliver")
        except StoreUnavailable as exc:
            log.error("archive could not record %d dead letters: %s", len(messages), exc)
            return {m.ack_id: nack(5.0) for m in messages}
        return {m.ack_id: ACK for m in messages}
