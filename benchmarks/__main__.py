"""`make bench` / `python -m benchmarks [--quick] [--only collect,pipeline,slow_vendor,memory,imports,cost] [--json PATH]`

Prints the figures kept in docs/benchmarks.md, in one run (~8 minutes; --quick ~2). Loopback only;
every load is bounded in time (wrk -d) or count. See benchmarks/<section>.py for what each measures.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

from benchmarks import _util

SECTIONS = ["collect", "pipeline", "deliver", "slow_vendor", "memory", "imports", "cost"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs, fewer repeats, 100k events for memory")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--json", help="also write every figure as JSON to this file")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    out: dict = {"python": platform.python_version(), "machine": platform.machine(),
                 "cpus": _util.os.cpu_count(), "load_average_at_start": _util.load_average(),
                 "generator": "wrk (1 thread)" if _util.have_wrk() else "asyncio streams (wrk not found)",
                 "quick": args.quick}
    print(f"tagpipe benchmarks: Python {out['python']}, {out['cpus']} CPUs, load average {out['load_average_at_start']}, "
          f"load generator: {out['generator']}{' (quick)' if args.quick else ''}", flush=True)

    def section(title: str, name: str, fn, table):
        print(f"\n## {title}", flush=True)
        t = time.perf_counter()
        result = fn()
        result["section_seconds"] = time.perf_counter() - t
        out[name] = result
        print("", *table(result), sep="\n", flush=True)

    if "collect" in only:
        from benchmarks import collect_http

        section("1. collect: requests/s and latency vs a functions-framework hello-world (same server settings)",
                "collect", lambda: collect_http.run(args.quick), collect_http.table)
    if "pipeline" in only or "deliver" in only:
        from benchmarks import pipeline

        section("2-3. end-to-end: the local stack to fake Meta + GA4 (events/s, hit-to-vendor time, batching)",
                "pipeline", lambda: pipeline.run(args.quick), pipeline.table)
    if "slow_vendor" in only:
        from benchmarks import slow_vendor

        section("3b. a slow vendor: duplicates it causes, with the time-out flat and scaled to the batch",
                "slow_vendor", lambda: slow_vendor.run(args.quick), slow_vendor.table)
    if "memory" in only:
        from benchmarks import memory

        section("4a. memory: RSS through the pipeline stages (in-process, no HTTP)", "memory",
                lambda: memory.run(args.quick), memory.table)
    if "imports" in only:
        from benchmarks import imports

        section("4b. cold start: import time of each function", "imports", lambda: imports.run(args.quick),
                imports.table)
    if "cost" in only:
        from benchmarks import cost

        section("5. cost per million events on GCP (list prices), next to sGTM on Cloud Run and Stape", "cost",
                lambda: cost.run(out), cost.table)
    out["total_seconds"] = time.perf_counter() - started
    print(f"\ndone in {out['total_seconds']:.0f} s (load average now {_util.load_average()})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
