"""deliver: delivery tasks -> batched vendor requests -> one outcome per (event, destination).

    ok                    -> delivered (and the dedup key is marked, in the same write)
    retry / throttle      -> nack with backoff or the vendor's Retry-After; at the last attempt,
                             dead-lettered (published to the dead-letter topic, replayable)
    permanent, per event  -> rejected (the vendor refused that event: fix the data)
    permanent, whole call -> dead-lettered (credentials or config: fix them, then replay)
    already delivered     -> filtered: duplicate (same event_id from another hit), for the events in
                             the destination's dedup scope ([delivery] dedup: all | conversions | none)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx
from pydantic import ValidationError

from tagpipe.destinations.base import Batch, Destination, Result, VendorRequest, Verdict
from tagpipe.errors import ConfigError, DeliveryError, RetryableDelivery, StoreUnavailable
from tagpipe.models import DeliveryTask, FailedEvent, Outcome, OutcomeKind
from tagpipe.monitoring.redact import only_events
from tagpipe.pipeline.outcomes import settle_outcomes
from tagpipe.pipeline.stage import ACK, Decision, nack
from tagpipe.runtime import Runtime
from tagpipe.storage.base import DeliveredKey
from tagpipe.transport.base import DEAD_LETTER, Message, exponential_backoff

log = logging.getLogger("tagpipe.deliver")
BODY_SNIPPET = 2000
# A crash between sending and recording leaves the vendor's answer unknown; the retry may arrive
# twice, with the same event_id, which every vendor we send to deduplicates on.
RESENT_NOTE = "(resent after an interrupted attempt; the vendor dedups on event_id)"  # bytes of a vendor response kept for the debug view and failed events


def dedup_key(task: DeliveryTask) -> str:
    return f"{task.event_name}:{task.event_id}"


class Deliverer:
    subscription = "deliver"

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._conversion_names: tuple[list[str], frozenset[str]] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @property
    def max_attempts(self) -> int:
        return self.rt.config.delivery.max_attempts

    def handle(self, messages: Sequence[Message]) -> dict[str, Decision]:
        decisions: dict[str, Decision] = {}
        by_dest: dict[str, list[tuple[Message, DeliveryTask]]] = defaultdict(list)
        outcomes: list[Outcome] = []
        failures: list[FailedEvent] = []
        for m in messages:
            try:
                task = DeliveryTask.model_validate_json(m.data)
            except ValidationError as exc:
                failures.append(FailedEvent(stage="deliver", hit_id=m.message_id, error_code="invalid_task",
                                            message=f"delivery task does not validate: {exc.error_count()} errors"))
                outcomes.append(Outcome(hit_id=m.message_id, outcome=OutcomeKind.REJECTED, reason="invalid_task"))
                decisions[m.ack_id] = ACK
                continue
            by_dest[task.destination].append((m, task))
        try:
            if outcomes or failures:
                self.rt.store.record_failures(failures)
                settle_outcomes(self.rt.store, outcomes, stage="deliver")
            for dest_id, items in by_dest.items():
                decisions.update(self._deliver(dest_id, items))
        except StoreUnavailable as exc:
            log.error("deliver could not record outcomes: %s", exc)
            for m in messages:
                decisions.setdefault(m.ack_id, nack(5.0))
        return decisions

    # ------------------------------------------------------------------ one destination
    def _deliver(self, dest_id: str, items: list[tuple[Message, DeliveryTask]]) -> dict[str, Decision]:
        decisions: dict[str, Decision] = {}
        outcomes: list[Outcome] = []
        delivered: list[DeliveredKey] = []
        failures: list[FailedEvent] = []
        dead: list[tuple[Message, DeliveryTask, str, str]] = []
        settled_keys: list[str] = []
        unheld_keys: list[str] = []
        destination = self.rt.destinations.get(dest_id)
        if destination is None:  # removed or disabled since transform routed it
            for m, t in items:
                outcomes.append(self._outcome(t, OutcomeKind.FILTERED, "disabled", "destination no longer enabled"))
                decisions[m.ack_id] = ACK
            settle_outcomes(self.rt.store, outcomes, stage="deliver")
            return decisions

        # dedup: against what was delivered before (for the events in the destination's dedup scope),
        # and inside this batch (always: it costs no store call)
        guarded = self._guarded(dest_id, destination)
        key_of = {t.event_uid: dedup_key(t) for _, t in items}
        scoped = {key_of[t.event_uid] for _, t in items if guarded(t)}
        already = self.rt.store.delivered_keys(dest_id, scoped) if scoped else {}
        fresh: list[tuple[Message, DeliveryTask]] = []
        seen: dict[str, str] = {}
        for m, t in items:
            key = key_of[t.event_uid]
            first_uid = already.get(key) or seen.get(key)
            if first_uid is None:
                seen[key] = t.event_uid
                fresh.append((m, t))
            elif first_uid == t.event_uid:
                decisions[m.ack_id] = ACK  # a redelivery of a task already done: its outcome exists
            else:
                outcomes.append(self._outcome(t, OutcomeKind.FILTERED, "duplicate",
                                              f"event_id already delivered to {dest_id}"))
                decisions[m.ack_id] = ACK

        # the in-flight journal, claimed in one write with its check: an event another attempt may still
        # have at the vendor waits for that attempt's hold to pass instead of going out a second time
        resent: set[str] = set()
        hold = 0.0
        journaled = [key_of[t.event_uid] for _, t in fresh if key_of[t.event_uid] in scoped]
        if journaled:
            hold = self._hold(destination, len(fresh))
            claim = self.rt.store.mark_inflight(dest_id, journaled, hold)
            resent = claim.resent
            if claim.held:
                for m, t in fresh:
                    if (left := claim.held.get(key_of[t.event_uid])) is not None:
                        decisions[m.ack_id] = nack(left)
                fresh = [(m, t) for m, t in fresh if m.ack_id not in decisions]
        by_uid = {t.event_uid: (m, t) for m, t in fresh}
        if fresh:
            try:
                destination.before_send(self.rt.http)  # credentials (OAuth) may fail here
                batch = destination.build_requests([t for _, t in fresh])
            except (DeliveryError, ConfigError) as exc:
                retry = isinstance(exc, RetryableDelivery)
                reason = getattr(exc, "reason", "config")
                for m, t in fresh:
                    if retry and m.delivery_attempt < self.max_attempts:
                        decisions[m.ack_id] = nack(exc.retry_after or self._backoff(m.delivery_attempt))
                    else:
                        dead.append((m, t, reason, str(exc)[:300]))
                        decisions[m.ack_id] = ACK
                log.warning("%s: could not prepare requests: %s", dest_id, reason)
                batch = Batch()
            for rej in batch.rejected:
                m, t = by_uid[rej.event_uid]
                outcomes.append(self._outcome(t, OutcomeKind.REJECTED, rej.reason, rej.detail))
                decisions[m.ack_id] = ACK
            sent = {uid for r in batch.requests for uid in r.event_uids}
            # journaled but not sent (refused while building, or no credentials): nothing of this attempt is out
            settled_keys += [k for k in {key_of[t.event_uid] for _, t in fresh if t.event_uid not in sent}
                             if k in scoped and k not in resent]
            for request, (result, response_info) in zip(batch.requests, self._send_all(destination, batch.requests),
                                                        strict=True):
                # the vendor answered (or the request never reached it): this attempt did not reach it twice.
                # An entry left by an interrupted earlier attempt stays until the pair is settled, so a retry
                # after an HTTP error still labels the delivery as possibly a second copy (issue 14)
                answered = response_info["answered"]
                for uid in request.event_uids:
                    m, t = by_uid[uid]
                    verdict, reason, detail = result.per_event.get(uid, (result.verdict, result.reason, result.detail))
                    if verdict is Verdict.OK:
                        if t.notes:
                            detail = " ".join(filter(None, [detail, "; ".join(t.notes)]))
                        if key_of[uid] in resent:
                            detail = (detail + " " if detail else "") + RESENT_NOTE
                        outcomes.append(self._outcome(t, OutcomeKind.DELIVERED, reason or "ok", detail, t.identifiers))
                        if key_of[uid] in scoped:
                            delivered.append(DeliveredKey(dest_id, key_of[uid], t.event_uid))
                        decisions[m.ack_id] = ACK
                    elif verdict is Verdict.PERMANENT and uid in result.per_event:
                        outcomes.append(self._outcome(t, OutcomeKind.REJECTED, reason, detail))
                        failures.append(self._failure(t, reason, detail, response_info))
                        decisions[m.ack_id] = ACK
                    elif verdict is Verdict.PERMANENT or m.delivery_attempt >= self.max_attempts:
                        # the archive records the failed event (the replay source) from the dead letter
                        dead.append((m, t, reason, f"{detail} (status={response_info.get('status')})"))
                        decisions[m.ack_id] = ACK
                    else:
                        delay = result.retry_after
                        if delay is None:
                            delay = self._backoff(m.delivery_attempt)
                        if not answered and key_of[uid] in scoped:
                            delay = max(delay, hold)  # the unanswered copy may still be on its way
                        decisions[m.ack_id] = nack(delay, throttled=verdict is Verdict.THROTTLE)
                    key = key_of[uid]
                    if answered and key in scoped:
                        if key not in resent or decisions[m.ack_id] is ACK:
                            settled_keys.append(key)
                        else:
                            unheld_keys.append(key)
                if any(t.debug_token for t in (by_uid[u][1] for u in request.event_uids)):
                    self._trace(request, result, response_info, [by_uid[u][1] for u in request.event_uids])

        if dead:
            self.rt.bus.publish_many(DEAD_LETTER, [
                (m.data, {"destination": dest_id, "reason": reason, "detail": detail[:500],
                          "CloudPubSubDeadLetterSourceSubscription": self.subscription,
                          "CloudPubSubDeadLetterSourceDeliveryCount": str(m.delivery_attempt)})
                for m, t, reason, detail in dead
            ])
            outcomes += [self._outcome(t, OutcomeKind.DEAD_LETTERED, reason, detail) for m, t, reason, detail in dead]
        if failures:
            self.rt.store.record_failures(failures)
        settle_outcomes(self.rt.store, outcomes, delivered, stage="deliver")
        if settled_keys or unheld_keys:
            self.rt.store.clear_inflight(dest_id, settled_keys, unheld_keys)
        return decisions

    def _guarded(self, dest_id: str, destination: Destination) -> Callable[[DeliveryTask], bool]:
        """Which of this destination's tasks get the delivered-key check, the in-flight journal and the
        delivered marker. Outside the scope an event is sent at least once: a redelivered or repeated
        one reaches the vendor again and the vendor's own event_id dedup drops it (Meta: event_name +
        event_id within 48 h, ../shared/VENDORS.md §1.5); its outcome is still recorded once."""
        d = self.rt.config.delivery
        scope = d.dedup_scope(dest_id)
        if scope == "all" or (scope == "conversions" and destination.conversions_only):
            return lambda t: True
        if scope == "none":
            return lambda t: False
        names = self._conversion_names
        if names is None or names[0] is not d.dedup_events:
            names = self._conversion_names = (d.dedup_events, frozenset(n.casefold() for n in d.dedup_events))
        events = names[1]
        return lambda t: t.event_name.casefold() in events

    def _hold(self, destination: Destination, events: int) -> float:
        """How long an attempt with `events` events to send may be at the vendor unanswered: its longest
        request's time-out, plus the grace for the vendor to record what it got."""
        timeout = destination.request_timeout(min(events, destination.max_batch)) or 0.0
        return timeout + self.rt.config.delivery.resend_grace

    def _backoff(self, attempt: int) -> float:
        d = self.rt.config.delivery
        return exponential_backoff(attempt, d.min_backoff, d.max_backoff)

    def _send_all(self, destination: Destination, requests: list[VendorRequest]) -> list[tuple[Result, dict]]:
        """The batch's vendor requests, up to [delivery] vendor_concurrency in flight at once: GA4 takes one
        user per request, so a batch of 1,000 events is ~1,000 requests, and one after another the
        invocation would be billed their summed latency."""
        n = min(len(requests), self.rt.config.delivery.vendor_concurrency)
        if n <= 1:
            return [self._send(destination, r) for r in requests]
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.rt.config.delivery.vendor_concurrency,
                                                    thread_name_prefix="tagpipe-send")
        return list(self._pool.map(lambda r: self._send(destination, r), requests))

    def _send(self, destination: Destination, request: VendorRequest) -> tuple[Result, dict]:
        local = destination.send_locally(request)
        if local is not None:
            return local, {"status": None, "body": local.detail, "answered": True}
        started = time.perf_counter()
        response = error = None
        try:
            kwargs = {}
            timeout = destination.request_timeout(len(request.event_uids))
            if timeout:
                kwargs["timeout"] = httpx.Timeout(timeout, connect=self.rt.config.delivery.connect_timeout)
            response = self.rt.http.request(
                request.method, request.url, headers=request.headers, json=request.json,
                content=request.content, **kwargs,
            )
        except Exception as exc:  # network errors are a verdict, not a crash
            error = exc
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        result = destination.classify(request, response, error)
        info = {
            "status": response.status_code if response is not None else None,
            "body": response.text[:BODY_SNIPPET] if response is not None else f"{type(error).__name__}",
            "elapsed_ms": elapsed_ms,
            # no connection, no request: the vendor cannot have this attempt's events
            "answered": response is not None or isinstance(error, httpx.ConnectError | httpx.ConnectTimeout),
        }
        if result.verdict is not Verdict.OK:
            log.warning("%s: %s %s (%s) for %d events", destination.id, result.verdict.value, result.reason,
                        request.masked_url, len(request.event_uids))
        return result, info

    def _trace(self, request: VendorRequest, result: Result, info: dict, tasks: list[DeliveryTask]) -> None:
        data = {
            "destination": tasks[0].destination,
            # only the traced events of the batch: the others belong to other visitors
            "request": {"method": request.method, "url": request.masked_url,
                        "body": only_events(request.json, {t.event_id for t in tasks if t.debug_token})},
            "response": info,
            "verdict": result.verdict.value,
            "reason": result.reason,
        }
        for token in {t.debug_token for t in tasks if t.debug_token}:
            for hit_id in {t.hit_id for t in tasks if t.debug_token == token}:
                self.rt.store.record_trace(token, hit_id, "deliver", data)

    @staticmethod
    def _outcome(t: DeliveryTask, kind: OutcomeKind, reason: str, detail: str,
                 identifiers: list[str] | None = None) -> Outcome:
        return Outcome(hit_id=t.hit_id, event_uid=t.event_uid, destination=t.destination, outcome=kind,
                       reason=reason, detail=detail, event_name=t.event_name, identifiers=identifiers or [])

    @staticmethod
    def _failure(t: DeliveryTask, reason: str, detail: str, info: dict) -> FailedEvent:
        return FailedEvent(stage="deliver", hit_id=t.hit_id, event_uid=t.event_uid, destination=t.destination,
                           error_code=reason or "unknown", message=detail or "vendor refused the request",
                           payload=f"status={info.get('status')} body={str(info.get('body'))[:500]}")
