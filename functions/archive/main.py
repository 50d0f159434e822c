"""archive: private HTTP function fed by the Pub/Sub push subscription on the dead-letter topic.

Records every dead letter as a failed event (the replay source) and, for messages Pub/Sub
dead-lettered on its own, the `dead_lettered` outcome.
"""

import functions_framework.aio

from tagpipe.pipeline.archive import DeadLetterArchive
from tagpipe.pipeline.push import handle_push
from tagpipe.runtime import get_runtime

_stage = None


@functions_framework.aio.http
async def archive(request):
    global _stage
    if _stage is None:
        _stage = DeadLetterArchive(get_runtime())
    return await handle_push(request, _stage)
