"""deliver: private HTTP function on deliveries, fed either way Terraform's `stage_trigger` says:

- push: each per-destination push subscription POSTs its messages to /; concurrent pushes to one
  instance are batched (PushBatcher), so vendors get full requests. TAGPIPE_PUSH_LINGER_MS
  (default 100) is how long a push waits for others to join its batch.
- schedule: Cloud Scheduler POSTs /drain {"destination": "<id>"} every minute, one job per
  destination, and the function drains that destination's pull subscription
  (tagpipe.pipeline.drain; TAGPIPE_DRAIN_SECONDS bounds a drain).
"""


import functions_framework.aio

from tagpipe.pipeline.deliver import Deliverer
from tagpipe.pipeline.drain import handle_drain, is_drain_request
from tagpipe.pipeline.push import PushBatcher, handle_push
from tagpipe.runtime import get_runtime
from tagpipe.settings import Settings

_batcher = None


@functions_framework.aio.http
async def deliver(request):
    global _batcher
    if _batcher is None:
        linger = Settings.load().push_linger_ms / 1000
        _batcher = PushBatcher(Deliverer(get_runtime()), max_batch=1000, linger=linger)
    stage = _batcher.stage
    if is_drain_request(request):
        return await handle_drain(request, stage, stage.rt.bus, stage.rt.entries)
    return await handle_push(request, stage, _batcher)
