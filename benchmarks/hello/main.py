"""The hello-world baselines: the smallest functions functions-framework can serve, on the same server
settings as collect, so collect's figures can be read as a ratio of what the framework itself does."""

import functions_framework
import functions_framework.aio
from starlette.responses import Response

# What collect answers to the benchmark's gtag GET hit (a returning browser with _ga and _fbp): 204, the
# refreshed first-party client id and _fbp, no-store. Sizes as collect's own (tagpipe's defaults).
COLLECT_ANSWER = [
    ("set-cookie", "_fpcid=2077486026.1712887266; Max-Age=34560000; Expires=Thu, 30 Dec 2027 11:40:46 GMT; "
                   "Domain=shop.example; Path=/; Secure; HttpOnly; SameSite=Lax"),
    ("set-cookie", "_fbp=fb.1.1712887266123.1098115397; Max-Age=7776000; Expires=Tue, 23 Feb 2027 11:40:46 GMT; "
                   "Domain=shop.example; Path=/; Secure; SameSite=Lax"),
    ("cache-control", "no-store"),
]


@functions_framework.aio.http
async def hello(request):
    """async (--asgi): what collect is."""
    return Response(status_code=204)


@functions_framework.aio.http
async def collect_noop(request):
    """collect's ceiling: sent collect's request, it gives collect's answer and does nothing else (no
    parsing, no cookie plan, no queue). What is left between it and the hello-world is the server and
    framework handling bigger requests and answers; between it and collect, collect's own work."""
    response = Response(status_code=204)
    for name, value in COLLECT_ANSWER:
        response.headers.append(name, value)
    return response


@functions_framework.http
def hello_sync(request):
    """sync (Flask on gunicorn gthread): the default functions-framework serving."""
    return "", 204
