"""transform: private HTTP function on raw-hits, fed either way Terraform's `stage_trigger` says:

- push: the Pub/Sub push subscription POSTs each message to / (tagpipe.pipeline.push);
- schedule: Cloud Scheduler POSTs /drain every minute and the function drains the pull
  subscription (tagpipe.pipeline.drain; TAGPIPE_DRAIN_SECONDS bounds a drain).
"""

import functions_framework.aio

from tagpipe.pipeline.drain import handle_drain, is_drain_request
from tagpipe.pipeline.push import handle_push
from tagpipe.pipeline.transform import Transformer
from tagpipe.runtime import get_runtime

_stage = None


@functions_framework.aio.http
async def transform(request):
    global _stage
    if _stage is None:
        _stage = Transformer(get_runtime())
    if is_drain_request(request):
        return await handle_drain(request, _stage, _stage.rt.bus)
    return await handle_push(request, _stage)
