"""Scheduled drain: the transform and deliver functions empty their pull subscription(s) on a timer.

With `stage_trigger = "schedule"` (Terraform) the stage subscriptions are pull subscriptions and
Cloud Scheduler POSTs `<function url>/drain` every minute (OIDC, the invoker account):

    transform:  POST /drain  {}                         drains {prefix}-transform
    deliver:    POST /drain  {"destination": "ga4"}     drains {prefix}-deliver-ga4

The function pulls batches of up to 1,000, hands them to the same stage object the push path uses
(Transformer / Deliverer) and settles them as the local worker does (`stage.process`: ack, or nack
with the delay the stage asked for), until the subscription is empty or the time budget
(TAGPIPE_DRAIN_SECONDS) is spent, then answers 200 {subscription, pulled, acked, nacked, ...}.

Why: push costs one function invocation (and one request log line) per message and holds an
instance while each push waits to be batched; a drain handles a minute's backlog in a few
invocations with vendor requests as full as the vendors take. Overlapping drains (a drain still
running when the next minute fires) are safe: a pulled message is leased to one puller until it
is settled or its ack deadline passes.

The budget is checked before each pull, so a drain can run over it by one batch's handling: keep
it well under the function timeout (Terraform sets half of it).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tagpipe.errors import InvalidInput, StoreUnavailable
from tagpipe.pipeline.stage import Stage, process
from tagpipe.settings import Settings
from tagpipe.transport.base import ROUTING_ATTRIBUTE, Bus, Message, deliver_subscription, destination_of

log = logging.getLogger("tagpipe.drain")

DRAIN_PATH = "/drain"
BUDGET_ENV = "TAGPIPE_DRAIN_SECONDS"
DEFAULT_BUDGET = 25.0  # seconds; under the shortest default function timeout (transform, 60 s)
MAX_BATCH = 1_000  # Pub/Sub's pull maximum that still fits one Meta request (1,000 events)
FILL_WAIT = 0.5  # seconds a pull waits for messages while a batch is being filled


@dataclass
class DrainResult:
    subscription: str
    pulled: int = 0
    acked: int = 0
    nacked: int = 0
    batches: int = 0
    foreign: int = 0  # for another destination (only where filters are ignored: the emulator); acked unhandled
    seconds: float = 0.0
    stopped: str = "empty"  # empty | budget | error

    def as_json(self) -> dict:
        return {"ok": self.stopped != "error", **asdict(self)}


def drain(bus: Bus, stage: Stage, subscription: str | None = None, *, budget: float = DEFAULT_BUDGET,
          batch: int = MAX_BATCH, wait: float = FILL_WAIT,
          clock: Callable[[], float] = time.monotonic) -> DrainResult:
    """Pull, handle and settle batches from `subscription` until it is empty or `budget` s are spent.

    A batch is filled by pulling again until it holds `batch` messages or a pull comes back empty
    (Pub/Sub often returns fewer than asked), so vendors get requests as full as the backlog allows.
    """
    subscription = subscription or stage.subscription
    destination = destination_of(subscription)
    result = DrainResult(subscription)
    start = clock()
    try:
        while clock() - start < budget:
            messages: list[Message] = []
            empty = False
            while len(messages) < batch and clock() - start < budget:
                got = bus.pull(subscription, batch - len(messages), wait)
                if not got:
                    empty = True
                    break
                messages += got
            if messages:
                result.pulled += len(messages)
                result.batches += 1
                if destination is not None:
                    messages = _route(bus, subscription, destination, messages, result)
                if messages:
                    decisions = process(bus, stage, messages, subscription)
                    acked = sum(1 for m in messages if (d := decisions.get(m.ack_id)) is not None and d.ack)
                    result.acked += acked
                    result.nacked += len(messages) - acked
            if empty:
                break
        else:
            result.stopped = "budget"
    except StoreUnavailable as exc:
        # pull or settle failed: what was not settled comes back when its lease runs out
        log.error("drain of %s stopped: %s", subscription, exc)
        result.stopped = "error"
    result.seconds = round(clock() - start, 3)
    return result


def _route(bus: Bus, subscription: str, destination: str, messages: list[Message],
           result: DrainResult) -> list[Message]:
    """Keep the messages for this subscription's destination; ack the others.

    Pub/Sub's filter never delivers another destination's message here, but the emulator ignores
    filters (every per-destination subscription gets every task): the other copy is on its own
    subscription, so this one is acked without handling it.
    """
    mine = [m for m in messages if m.attributes.get(ROUTING_ATTRIBUTE) == destination]
    if len(mine) < len(messages):
        others = [m.ack_id for m in messages if m.attributes.get(ROUTING_ATTRIBUTE) != destination]
        bus.ack(subscription, others)
        result.foreign += len(others)
    return mine


def is_drain_request(request: Request) -> bool:
    """A drain is a request to /drain; Pub/Sub pushes to the function's root URL."""
    return request.url.path.rstrip("/").endswith(DRAIN_PATH)


def drain_budget(environ: Mapping[str, str] | None = None) -> float:
    """TAGPIPE_DRAIN_SECONDS (tagpipe.settings): seconds in (0, 3600], default 25."""
    return Settings.load(environ).drain_seconds


def drain_subscription(body: bytes, stage: Stage, destinations: Collection[str] | None = None) -> str:
    """The subscription a drain request names; InvalidInput (400) if the body is not a drain request.

    Body: empty or a JSON object; `destination` (deliver only) picks `deliver-<destination>`, which
    must be one of `destinations` (the config's ids: Terraform's list must match them).
    """
    if not body.strip():
        request: object = {}
    else:
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput("invalid_drain_request", f"body is not JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise InvalidInput("invalid_drain_request", "the body must be a JSON object")
    unknown = sorted(set(request) - {"destination"})
    if unknown:
        raise InvalidInput("invalid_drain_request", f"unknown field(s): {', '.join(unknown)}")
    destination = request.get("destination")
    if destination is None:
        return stage.subscription
    if destinations is None:
        raise InvalidInput("invalid_drain_request", f"{stage.subscription} takes no destination")
    if not isinstance(destination, str) or destination not in destinations:
        known = ", ".join(sorted(destinations)) or "none"
        raise InvalidInput("invalid_drain_request",
                           f"destination {destination!r} is not configured (configured: {known})")
    return deliver_subscription(destination)


async def handle_drain(request: Request, stage: Stage, bus: Bus,
                       destinations: Collection[str] | None = None) -> Response:
    if request.method != "POST":
        return JSONResponse({"ok": False, "error": "method_not_allowed", "reason": "a drain is a POST"},
                            status_code=405)
    try:
        subscription = drain_subscription(await request.body(), stage, destinations)
        budget = drain_budget()
    except InvalidInput as exc:
        return JSONResponse(exc.as_json(), status_code=exc.status)
    result = await run_in_threadpool(drain, bus, stage, subscription, budget=budget)
    log.info("drained %s: %d pulled, %d acked, %d nacked in %.1f s (%s)", subscription, result.pulled,
             result.acked, result.nacked, result.seconds, result.stopped)
    # Scheduler records a non-2xx as a failed run: an unreachable Pub/Sub is worth seeing there
    return JSONResponse(result.as_json(), status_code=503 if result.stopped == "error" else 200)
