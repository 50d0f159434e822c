"""transform: private HTTP function fed by the Pub/Sub push subscription on raw-hits."""

import functions_framework.aio

from shared.pipeline.push import handle_push
from shared.pipeline.transform import Transformer
from shared.runtime import get_runtime

_stage = None


@functions_framework.aio.http
async def transform(request):
    global _stage
    if _stage is None:
        _stage = Transformer(get_runtime())
    return await handle_push(request, _stage)
