"""Serve one function the way a given server configuration does (a subprocess of the benchmarks).

    python -m benchmarks._serve MODE TARGET SOURCE PORT

MODE
  gcf-asgi       functions-framework --asgi as the gen2 buildpack starts it (FUNCTION_USE_ASGI):
                 gunicorn, 1 worker, uvicorn_worker.UvicornWorker (loop/http "auto"); tagpipe's
                 requirements bring uvloop + httptools, so that is what it runs, as deployed
  gcf-asgi-h11   the same worker forced to asyncio + h11 (UvicornH11Worker): what gen2 ran before
                 uvloop/httptools were in the requirements, for reference
  gcf-gthread    functions-framework without --asgi: gunicorn gthread, 1 worker, THREADS threads
                 (gen2 sets threads = concurrency); sync functions only
  uvicorn        uvicorn.Server as the local stack (shared/tagpipe/ops/local.py) runs it, loop/http "auto"
  uvicorn-h11    the same, forced to asyncio + h11
"""

from __future__ import annotations

import sys


def main() -> None:
    mode, target, source, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    host = "127.0.0.1"
    if mode == "gcf-gthread":
        from functions_framework import create_app
        from functions_framework._http import create_server

        create_server(create_app(target, source, "http"), False).run(host, port)
        return
    from functions_framework.aio import create_asgi_app

    app = create_asgi_app(target, source, "http")
    if mode.startswith("gcf-asgi"):
        from functions_framework._http import create_server

        worker = "uvicorn_worker.UvicornH11Worker" if mode == "gcf-asgi-h11" else "uvicorn_worker.UvicornWorker"
        create_server(app, False, worker_class=worker).run(host, port)
        return
    import uvicorn

    kw = {"loop": "asyncio", "http": "h11"} if mode == "uvicorn-h11" else {}
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                  lifespan="off", **kw)).run()


if __name__ == "__main__":
    main()
