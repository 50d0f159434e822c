"""deliver: private HTTP function fed by the Pub/Sub push subscription on deliveries.

Concurrent pushes to one instance are batched (PushBatcher), so vendors get full requests.
TAGPIPE_PUSH_LINGER_MS (default 100) is how long a push waits for others to join its batch.
"""

import os

import functions_framework.aio

from shared.pipeline.deliver import Deliverer
from shared.pipeline.push import PushBatcher, handle_push
from shared.runtime import get_runtime

_batcher = None


@functions_framework.aio.http
async def deliver(request):
    global _batcher
    if _batcher is None:
        linger = float(os.environ.get("TAGPIPE_PUSH_LINGER_MS", "100")) / 1000
        _batcher = PushBatcher(Deliverer(get_runtime()), max_batch=1000, linger=linger)
    return await handle_push(request, _batcher.stage, _batcher)
