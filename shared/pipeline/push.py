"""Pub/Sub push -> a stage: the adapter the transform and deliver functions use on GCP.

Pub/Sub push treats 2xx as ack and anything else as nack (then its retry policy and dead-letter
policy apply), so: ack -> 204, throttled -> 429, nack -> 503, malformed envelope -> 400.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.errors import InvalidInput


async def handle_push(request: Request, stage) -> Response:
    from shared.transport.push import parse_push_envelope

    body = await request.body()
    try:
        message = parse_push_envelope(body, request.headers)
    except InvalidInput as exc:
        return JSONResponse(exc.as_json(), status_code=exc.status)
    decisions = await run_in_threadpool(stage.handle, [message])
    decision = decisions.get(message.ack_id)
    if decision is not None and decision.ack:
        return Response(status_code=204)
    return Response(status_code=429 if decision is not None and decision.throttled else 503)
