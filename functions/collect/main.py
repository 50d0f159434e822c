"""collect: public HTTP function. Site tags send hits here (see README, "Point your site at it")."""

import functions_framework.aio

from tagpipe.pipeline.collect import handle


@functions_framework.aio.http
async def collect(request):
    return await handle(request)
