"""A real push endpoint for the emulator to call, served by functions-framework --asgi.

It runs the lead's production adapter (tagpipe.pipeline.push.handle_push, which calls
parse_push_envelope) over a scripted stage. The message attribute `mode` picks the answer:
ack -> 204; nack -> 503 always; nack-once / throttle-once -> 503 / 429 on the first delivery,
then 204. Every delivery is appended to $PUSH_LOG as a JSON line.
"""

import functions_framework.aio

from tagpipe.pipeline.push import handle_push
from tests.gcp.push_function.script import ScriptedStage

_stage = ScriptedStage()


@functions_framework.aio.http
async def receive(request):
    return await handle_push(request, _stage)
