"""The hello-world baselines: the smallest functions functions-framework can serve, on the same server
settings as collect, so collect's figures can be read as a ratio of what the framework itself does."""

import functions_framework
import functions_framework.aio
from starlette.responses import Response


@functions_framework.aio.http
async def hello(request):
    """async (--asgi): what collect is."""
    return Response(status_code=204)


@functions_framework.http
def hello_sync(request):
    """sync (Flask on gunicorn gthread): the default functions-framework serving."""
    return "", 204
