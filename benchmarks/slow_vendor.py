"""Duplicates a slow vendor causes (issue 14): the local stack (`tagpipe run`, a subprocess) delivering
purchases to a fake Meta on 127.0.0.1 that takes `LATENCY_PER_EVENT` seconds per event of each request
(a 1,000-event batch: 4 s) and, like a real server, records a request even when the client gave up on it.

Three runs of the same load:
  flat     the time-out of one event for any batch (1.5 s), and no hold before a resend: what tagpipe
           did before issue 14 (timeout_per_event = 0, resend_grace = 0)
  scaled   the defaults: 1.5 s + 5 ms per further event, an unanswered copy held for its time-out + 30 s
  stalled  the defaults, but one answer never comes inside any time-out (capped at 6 s for the run,
           the vendor stalls 8 s): what a resend costs when it cannot be avoided (resend_grace = 3 here)

Figures per run: Meta requests, events received, event_ids received more than once (duplicates at the
vendor; Meta drops them on event_id within 48 h, but they are requests and noise), resends labelled in
the outcomes, events dead-lettered, events lost (no outcome), and the seconds to the last outcome.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks.pipeline import _post_bursts
from tests.e2e.stack import LocalStack, wait_until
from tests.fakes.vendors import FakeVendors

PIXEL = "1234567890"
LATENCY_PER_EVENT = 0.004
RUNS = {
    "flat": ("resend_grace = 0", "timeout_per_event = 0", None),
    "scaled": ("", "", None),
    "stalled": ("resend_grace = 3", "max_timeout = 6", 8.0),
}


def _config(endpoint: str, delivery: str, meta: str) -> str:
    return f"""
[server]
rate_limit_per_ip = 0

[delivery]
min_backoff = 0.5
max_backoff = 2
{delivery}

[destinations.meta]
type = "meta"
pixel_id = "{PIXEL}"
endpoint = "{endpoint}"
{meta}
"""


def _one(name: str, n: int, log) -> dict:
    delivery, meta, stall = RUNS[name]
    with tempfile.TemporaryDirectory(prefix=f"tagpipe-bench-slow-{name}-") as tmp, FakeVendors() as fakes:
        stack = LocalStack(Path(tmp) / "stack", _config(fakes.url, delivery, meta),
                           {"META_ACCESS_TOKEN": fakes.meta_token})
        try:
            stack.start()
            fakes.meta.latency_per_event = LATENCY_PER_EVENT
            fakes.meta.expect_refusal("*")  # none expected; the figures report them instead of failing
            if stall:
                fakes.meta.slow_next(1, seconds=stall)
            t0 = time.perf_counter()
            _, bad = asyncio.run(_post_bursts(stack.url, n, 100, 4, name))
            outcomes = lambda: stack.store.query("SELECT COUNT(*) FROM outcomes WHERE destination = 'meta'")[0][0]  # noqa: E731
            wait_until(lambda: outcomes() >= n, 900, 0.1, what=f"{n} outcomes ({name})")
            seconds = time.perf_counter() - t0
            by_kind = dict(stack.store.query(
                "SELECT outcome, COUNT(*) FROM outcomes WHERE destination = 'meta' GROUP BY outcome"))
            labelled = stack.store.query("SELECT COUNT(*) FROM outcomes WHERE destination = 'meta'"
                                         " AND detail LIKE '%resent after an interrupted attempt%'")[0][0]
            duplicates = fakes.meta.duplicates()
            result = {
                "events": n, "non2xx_at_collect": bad, "meta_requests": len(fakes.meta.requests),
                "events_received": fakes.meta.count, "duplicate_event_ids": len(duplicates),
                "extra_copies": sum(c - 1 for c in duplicates.values()), "resends_labelled": labelled,
                "delivered": by_kind.get("delivered", 0), "dead_lettered": by_kind.get("dead_lettered", 0),
                "lost": n - sum(by_kind.values()), "refused": len(fakes.meta.refused),
                "seconds_to_last_outcome": seconds,
            }
        finally:
            stack.stop()
            if getattr(stack, "_store", None):
                stack._store.close()
    log(f"  {name:8} {result['meta_requests']:4} requests, {result['events_received']:6,} events received, "
        f"{result['duplicate_event_ids']:5,} duplicated event_ids ({result['resends_labelled']:,} labelled), "
        f"{result['dead_lettered']:,} dead-lettered, {result['lost']} lost, {seconds:.1f} s")
    return result


def run(quick: bool = False, log=print) -> dict:
    n = 2_000 if quick else 5_000
    return {"latency_per_event_s": LATENCY_PER_EVENT, "runs": {name: _one(name, n, log) for name in RUNS}}


def table(result: dict) -> list[str]:
    rows = ["| run | Meta requests | events received | duplicated event_ids | resends labelled | dead-lettered"
            " | lost | seconds to last outcome |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["runs"].items():
        rows.append(f"| {name} | {r['meta_requests']} | {r['events_received']:,} | {r['duplicate_event_ids']:,} | "
                    f"{r['resends_labelled']:,} | {r['dead_lettered']:,} | {r['lost']} | "
                    f"{r['seconds_to_last_outcome']:.1f} |")
    return rows
