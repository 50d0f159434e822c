"""deliver: private HTTP function fed by the Pub/Sub push subscription on deliveries."""

import functions_framework.aio

from shared.pipeline.deliver import Deliverer
from shared.pipeline.push import handle_push
from shared.runtime import get_runtime

_stage = None


@functions_framework.aio.http
async def deliver(request):
    global _stage
    if _stage is None:
        _stage = Deliverer(get_runtime())
    return await handle_push(request, _stage)
