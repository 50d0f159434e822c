"""The local queue alone (shared/tagpipe/transport/local.py): what one publish costs and how long its tail
is, and what group commit (publish_async) does when many requests publish at once.

    python -m benchmarks.bus [--n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from tagpipe.transport.base import RAW_HITS
from tagpipe.transport.local import LocalBus

PAYLOAD = b"x" * 800  # a gtag page_view RawHit is ~800 bytes (benchmarks/cost.py measures it)


def publish_latency(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="tagpipe-bench-bus-") as tmp:
        bus = LocalBus(tmp)
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            bus.publish(RAW_HITS, PAYLOAD)
            lat.append(time.perf_counter() - t)
        bus.close()
    q = statistics.quantiles(lat, n=1000)
    return {"n": n, "mean_us": statistics.mean(lat) * 1e6, "p50_us": q[499] * 1e6, "p99_us": q[989] * 1e6,
            "p999_us": q[998] * 1e6, "max_ms": max(lat) * 1e3, "over_2ms": sum(x > 0.002 for x in lat)}


def group_commit(n: int, concurrency: int) -> dict | None:
    with tempfile.TemporaryDirectory(prefix="tagpipe-bench-bus-") as tmp:
        bus = LocalBus(tmp)
        if not hasattr(bus, "publish_async"):
            return None

        async def main():
            t = time.perf_counter()
            for _ in range(n // concurrency):
                await asyncio.gather(*(bus.publish_async(RAW_HITS, PAYLOAD) for _ in range(concurrency)))
            return time.perf_counter() - t

        elapsed = asyncio.run(main())
        bus.close()
    return {"n": n, "concurrency": concurrency, "us_per_publish": elapsed / n * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bus")
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args()
    r = publish_latency(args.n)
    print(f"publish (one commit each), {r['n']:,} x {len(PAYLOAD)} B: mean {r['mean_us']:.1f} µs, p50 {r['p50_us']:.1f} µs, "
          f"p99 {r['p99_us']:.1f} µs, p99.9 {r['p999_us']:.0f} µs, max {r['max_ms']:.2f} ms, {r['over_2ms']} over 2 ms")
    for c in (1, 10, 50):
        g = group_commit(args.n, c)
        if g is None:
            print("publish_async: not in this version")
            break
        print(f"publish_async, {c} at once: {g['us_per_publish']:.1f} µs per publish")


if __name__ == "__main__":
    main()
