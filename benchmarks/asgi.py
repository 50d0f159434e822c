"""collect's own cost per request, without a server or a socket: the functions-framework ASGI app
called in-process with each benchmark request (and the hello-world for reference). Subtract the
hello-world and what is left is tagpipe's handler. Optional profile (pyinstrument).

    python -m benchmarks.asgi [--n 5000] [--concurrency 1] [--profile "gtag GET /g/collect"]

--concurrency C keeps C requests in flight on the loop (as a server under load does), so publishes
share a LocalBus group commit; 1 (the default) is one request after another, a commit each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from benchmarks import payloads
from benchmarks._util import ROOT


def _scope(shape) -> dict:
    path, _, query = shape.path.partition("?")
    headers = [(b"host", b"collect.shop.example")] + [(k.encode(), v.encode()) for k, v in shape.headers.items()]
    if shape.body:
        headers.append((b"content-length", str(len(shape.body)).encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": shape.method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
            "root_path": "", "headers": headers, "client": ("203.0.113.7", 50000), "server": ("127.0.0.1", 8080)}


async def _loop(app, shape, n: int, concurrency: int = 1) -> float:
    scope = _scope(shape)
    status: list[int] = []

    async def receive():
        return {"type": "http.request", "body": shape.body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    t = time.perf_counter()
    if concurrency <= 1:
        for _ in range(n):
            await app(dict(scope), receive, send)
    else:
        for start in range(0, n, concurrency):
            await asyncio.gather(*(app(dict(scope), receive, send) for _ in range(min(concurrency, n - start))))
    elapsed = time.perf_counter() - t
    bad = [s for s in status if s >= 300]
    if bad:
        raise RuntimeError(f"{shape.name}: {len(bad)} answers >= 300 (first {bad[0]})")
    return elapsed / n


def run(n: int = 5000, profile: str | None = None, concurrency: int = 1) -> dict[str, float]:
    from functions_framework.aio import create_asgi_app

    with tempfile.TemporaryDirectory(prefix="tagpipe-bench-asgi-") as tmp:
        config = Path(tmp) / "tagpipe.toml"
        config.write_text(f'[storage]\ndir = "{Path(tmp) / "data"}"\n\n[server]\nrate_limit_per_ip = 0\n')
        os.environ["TAGPIPE_CONFIG"] = str(config)
        hello = create_asgi_app("hello", str(ROOT / "benchmarks" / "hello" / "main.py"), "http")
        collect = create_asgi_app("collect", str(ROOT / "functions" / "collect" / "main.py"), "http")
        out = {}
        targets = [(hello, payloads.Shape("hello-world", "GET", "/"))] + [(collect, s) for s in payloads.collect_shapes()]
        for app, shape in targets:
            asyncio.run(_loop(app, shape, 200))  # warm: the runtime, caches
            if profile == shape.name:
                from pyinstrument import Profiler

                prof = Profiler(interval=0.0002)
                prof.start()
            out[shape.name] = asyncio.run(_loop(app, shape, n, concurrency))
            if profile == shape.name:
                prof.stop()
                print(prof.output_text(unicode=False, color=False))
        from tagpipe.runtime import get_runtime

        get_runtime().close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.asgi")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=1, help="requests in flight at once (group commit)")
    ap.add_argument("--profile", help="the endpoint to profile, by its name in the table")
    args = ap.parse_args()
    result = run(args.n, args.profile, args.concurrency)
    hello = result["hello-world"]
    print(f"| endpoint | µs per request (ASGI app, in-process, {args.concurrency} in flight) | minus hello-world |"
          "\n|---|---:|---:|")
    for name, secs in result.items():
        print(f"| {name} | {secs * 1e6:.0f} | {(secs - hello) * 1e6:.0f} |")


if __name__ == "__main__":
    main()
