"""Pub/Sub push -> a stage: the adapter the transform and deliver functions use on GCP.

Pub/Sub push treats 2xx as ack and anything else as nack (then its retry policy and dead-letter
policy apply), so: ack -> 204, throttled -> 429, nack -> 503, malformed envelope -> 400.

Push brings one message per request. Vendors want batches (Meta takes up to 1,000 events a
request), so deliver runs pushes through a `PushBatcher`: the concurrent requests one instance
is serving (Cloud Functions concurrency) wait up to `linger` seconds together and go to the stage
as one batch; each request then answers with its own message's decision.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tagpipe.errors import InvalidInput
from tagpipe.pipeline.stage import NACK, Decision
from tagpipe.transport.base import Message

log = logging.getLogger("tagpipe.push")


class PushBatcher:
    def __init__(self, stage, max_batch: int = 500, linger: float = 0.1) -> None:
        self.stage, self.max_batch, self.linger = stage, max_batch, linger
        self._pending: list[tuple[Message, asyncio.Future]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def submit(self, message: Message) -> Decision:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((message, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.linger, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: list[tuple[Message, asyncio.Future]]) -> None:
        try:
            decisions = await run_in_threadpool(self.stage.handle, [m for m, _ in batch])
        except Exception:
            log.exception("stage %s failed on a pushed batch of %d; nacking it", self.stage.subscription, len(batch))
            decisions = {}
        for message, future in batch:
            if not future.done():
                future.set_result(decisions.get(message.ack_id, NACK))


async def handle_push(request: Request, stage, batcher: PushBatcher | None = None) -> Response:
    from tagpipe.transport.push import parse_push_envelope

    body = await request.body()
    try:
        message = parse_push_envelope(body, request.headers)
    except InvalidInput as exc:
        return JSONResponse(exc.as_json(), status_code=exc.status)
    if batcher is not None:
        decision = await batcher.submit(message)
    else:
        decision = (await run_in_threadpool(stage.handle, [message])).get(message.ack_id)
    if decision is not None and decision.ack:
        return Response(status_code=204)
    return Response(status_code=429 if decision is not None and decision.throttled else 503)
