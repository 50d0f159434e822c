"""transform: raw hit -> canonical events -> one delivery task per (event, destination).

Every (event, destination) pair leaves here either as a task on the deliveries topic or with a
recorded outcome (filtered: consent / not_mapped / disabled / no_tag_fired; rejected: invalid for that
vendor). A destination that [tags] name gets one task per firing tag, keyed "<event_uid>#<tag>"
(tagpipe.tagging; docs/tags.md), and consent is still checked before any tag.
Vendor hashing happens here (in each destination's prepare), so raw PII never travels further.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property

from pydantic import ValidationError

from tagpipe.bots import BotFilter
from tagpipe.consent import ConsentPolicy
from tagpipe.errors import InvalidInput, StoreUnavailable
from tagpipe.identity import enrich_event, identity_config
from tagpipe.models import HIT_LEVEL, DeliveryTask, Event, FailedEvent, Outcome, OutcomeKind, RawHit
from tagpipe.parsing import parse_hit
from tagpipe.pipeline.outcomes import settle_outcomes
from tagpipe.pipeline.stage import ACK, Decision, nack
from tagpipe.privacy import privacy_config, redact_event, scrub_text, stored_event, vendor_event
from tagpipe.runtime import Runtime
from tagpipe.tagging import tag_event_uid
from tagpipe.transport.base import DELIVERIES, Message

log = logging.getLogger("tagpipe.transform")


class Transformer:
    subscription = "transform"

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        cfg = runtime.config
        self.bots = BotFilter.from_config(cfg)  # [bots]: crawlerdetect's list, LRU per user agent
        self.consent = ConsentPolicy.from_config(cfg)  # [consent]: allow / restrict / deny per destination
        self.identity = identity_config(cfg)  # [identity]: the server-set client id and click id cookies
        self.privacy = privacy_config(cfg)  # [privacy]: IP to vendors and in the store

    def handle(self, messages: Sequence[Message]) -> dict[str, Decision]:
        hits: list[tuple[Message, RawHit]] = []
        outcomes: list[Outcome] = []
        failures: list[FailedEvent] = []
        decisions: dict[str, Decision] = {}
        for m in messages:
            try:
                hits.append((m, RawHit.model_validate_json(m.data)))
            except ValidationError as exc:
                # not ours to retry: record it and move on
                failures.append(
                    FailedEvent(stage="transform", hit_id=m.message_id, error_code="invalid_message",
                                message=f"raw hit message does not validate: {exc.error_count()} errors",
                                payload=scrub_text(m.data[:4000].decode("utf-8", "replace")))
                )
                outcomes.append(Outcome(hit_id=m.message_id, outcome=OutcomeKind.REJECTED, reason="invalid_message"))
                decisions[m.ack_id] = ACK

        events: list[Event] = []
        tasks: list[DeliveryTask] = []
        traces: list[tuple[str, str, dict]] = []
        for m, hit in hits:
            decisions[m.ack_id] = ACK
            try:
                parsed = parse_hit(hit)
            except InvalidInput as exc:  # collect validated it, so only a changed parser gets here
                failures.append(self._failure(hit, exc.code, exc.message))
                outcomes.append(Outcome(hit_id=hit.hit_id, outcome=OutcomeKind.REJECTED, reason=exc.code, detail=exc.message))
                continue
            for event in parsed:
                event = enrich_event(event, self.identity, self.consent.default)
                events.append(event)
                event_tasks, event_outcomes = self.route(event)
                tasks += event_tasks
                outcomes += event_outcomes
                if event.debug_token:
                    traces.append((event.debug_token, event.hit_id, {
                        "event": redact_event(event).model_dump(mode="json"),
                        "tasks": [t.model_dump(mode="json") for t in event_tasks],
                        "outcomes": [o.model_dump(mode="json") for o in event_outcomes],
                    }))

        try:
            store = self.rt.store
            store.record_hits([h for _, h in hits])
            store.record_events([stored_event(e, self.privacy) for e in events])
            if tasks:
                self.rt.bus.publish_many(
                    DELIVERIES,
                    [(t.compact_json().encode(), {"destination": t.destination}) for t in tasks],
                )
            if failures:
                store.record_failures(failures)
            if outcomes:
                settle_outcomes(store, outcomes, stage="transform")
            for token, hit_id, data in traces:
                store.record_trace(token, hit_id, "transform", data)
        except StoreUnavailable as exc:
            log.error("transform could not record a batch of %d hits: %s", len(hits), exc)
            return {m.ack_id: nack() for m in messages}
        return decisions

    @cached_property
    def tagging(self):
        """The config's compiled tags (tagpipe.tagging); empty when it declares none."""
        return self.rt.config.tagging()

    def route(self, event: Event) -> tuple[list[DeliveryTask], list[Outcome]]:
        """One task per (event, destination), or per (event, destination, firing tag) for a destination
        that tags name; every pair not sent gets exactly one outcome (see docs/tags.md)."""
        tasks: list[DeliveryTask] = []
        outcomes: list[Outcome] = []
        bot = self.bots.check_event(event)
        if bot:
            return [], [self._outcome(event, HIT_LEVEL, OutcomeKind.FILTERED, "bot", bot)]
        entries = self.rt.entries
        if not entries:
            return [], [self._outcome(event, HIT_LEVEL, OutcomeKind.FILTERED, "no_destination",
                                      "no destination is configured")]
        outbound = vendor_event(event, self.privacy)  # the IP as vendors may see it
        tagging = self.tagging
        evaluation = None  # variables and triggers are evaluated lazily, once per event
        for dest_id, entry in entries.items():
            if not entry.enabled:
                outcomes.append(self._outcome(event, dest_id, OutcomeKind.FILTERED, "disabled", "destination is disabled"))
                continue
            consent = self.consent.decide(event, entry.type, entry.consent)
            if not consent.allowed:
                outcomes.append(self._outcome(event, dest_id, OutcomeKind.FILTERED, "consent", consent.reason))
                continue
            destination = self.rt.destinations[dest_id]
            if not tagging.manages(dest_id):  # no tag names it: every event, through its default mapping
                self._prepare(destination, event, consent.apply(outbound), event.event_uid, tasks, outcomes)
                continue
            if evaluation is None:
                evaluation = tagging.evaluate(outbound)
            decisions = tagging.decide(evaluation, dest_id)
            fired = [d.tag for d in decisions if d.status == "fired"]
            if not fired:
                blocked = [f"{d.tag.name} (blocked by {d.detail})" for d in decisions if d.status == "blocked"]
                outcomes.append(self._outcome(event, dest_id, OutcomeKind.FILTERED, "no_tag_fired",
                                              f"no tag for {dest_id} fired" + (f"; {', '.join(blocked)}" if blocked else "")))
                continue
            sent: dict[str, str] = {}  # vendor event name -> the tag that sends it, for this event
            for tag in fired:
                uid = tag_event_uid(event.event_uid, tag.name)
                tagged = tag.apply(evaluation)
                if tagged is None:
                    outcomes.append(self._outcome(event, dest_id, OutcomeKind.FILTERED, "tag_event_name_empty",
                                                  f"tag {tag.name}: event_name resolved to nothing", uid))
                    continue
                task = self._prepare(destination, event, consent.apply(tagged), uid, tasks, outcomes)
                if task is None:
                    continue
                first = sent.setdefault(task.event_name, tag.name)
                if first != tag.name:  # same vendor event twice: deliver would dedup it; say which tag won
                    tasks.pop()
                    outcomes.append(self._outcome(event, dest_id, OutcomeKind.FILTERED, "duplicate",
                                                  f"tag {first} already sends {task.event_name} for this event", uid))
        return tasks, outcomes

    def _prepare(self, destination, event: Event, prepared_from: Event, uid: str,
                 tasks: list[DeliveryTask], outcomes: list[Outcome]) -> DeliveryTask | None:
        """prepare() one event for one destination: append its task, or its outcome."""
        dest_id = destination.id
        try:
            prepared = destination.prepare(prepared_from)
        except InvalidInput as exc:
            outcomes.append(self._outcome(event, dest_id, OutcomeKind.REJECTED, exc.code, exc.message, uid))
            return None
        if prepared is None:
            name = prepared_from.vendor_event_name or event.name
            outcomes.append(self._outcome(event, dest_id, OutcomeKind.FILTERED, "not_mapped",
                                          f"{destination.type} does not take {name!r}", uid))
            return None
        task = DeliveryTask(
            event_uid=uid, hit_id=event.hit_id, event_id=event.event_id,
            event_name=prepared.event_name, event_time=event.timestamp, destination=dest_id,
            payload=prepared.payload, identifiers=prepared.identifiers, notes=list(prepared.notes),
            debug_token=event.debug_token,
        )
        tasks.append(task)
        return task

    @staticmethod
    def _outcome(event: Event, dest: str, kind: OutcomeKind, reason: str, detail: str,
                 event_uid: str | None = None) -> Outcome:
        return Outcome(hit_id=event.hit_id, event_uid=event_uid or event.event_uid, destination=dest, outcome=kind,
                       reason=reason, detail=detail, event_name=event.name)

    def _failure(self, hit: RawHit, code: str, message: str) -> FailedEvent:
        payload = hit.model_dump_json()
        if not self.rt.config.privacy.store_raw_pii:
            payload = scrub_text(payload)
        return FailedEvent(stage="transform", hit_id=hit.hit_id, error_code=code, message=message, payload=payload)
