"""4a. Peak RSS over many events through the pipeline stages, in-process (no HTTP server: hits are
published as collect publishes them, and the vendors answer through httpx.MockTransport).

  publish (collect's message) -> LocalBus raw-hits -> Transformer -> LocalBus deliveries -> Deliverer
  -> Meta CAPI (MockTransport, 200 {"events_received": n}) -> outcomes in the SQLite store

One JSON API hit with one purchase event (hashed email and phone) per event, unique event_ids,
to one destination (Meta). RSS is read from /proc at checkpoints; it must stay flat.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks import payloads
from benchmarks._util import PY, ROOT, peak_rss_mb, rss_mb


def _runtime(tmp: Path):
    from tagpipe.config import load_config
    from tagpipe.runtime import build_runtime

    config = tmp / "tagpipe.toml"
    config.write_text(f"""
[storage]
dir = "{tmp / 'data'}"

[destinations.meta]
type = "meta"
pixel_id = "123456789012345"
access_token_env = "BENCH_META_TOKEN"
""")
    os.environ["BENCH_META_TOKEN"] = "bench-token"
    rt = build_runtime(load_config(config))

    def vendor(request: httpx.Request) -> httpx.Response:
        n = len(json.loads(request.content)["data"])
        return httpx.Response(200, json={"events_received": n, "messages": [], "fbtrace_id": "bench"})

    rt.__dict__["http"] = httpx.Client(transport=httpx.MockTransport(vendor))  # Runtime.http is a cached_property
    return rt


def _hits(start: int, n: int) -> list[tuple[bytes, None]]:
    from tagpipe.models import RawHit

    out = []
    for i in range(start, start + n):
        raw = RawHit(source="json", method="POST", path="/events", query="",
                     body=json.dumps(payloads.json_event(f"m-{i}")),
                     headers={"user-agent": payloads.CHROME_UA, "content-type": "application/json"},
                     cookies={}, client_ip="203.0.113.7")
        out.append((raw.model_dump_json().encode(), None))
    return out


def run(quick: bool = False, log=print, events: int | None = None) -> dict:
    """In a fresh interpreter, so the RSS is the pipeline's alone (not the other sections')."""
    total = events or (100_000 if quick else 1_000_000)
    proc = subprocess.Popen([PY, "-m", "benchmarks.memory", str(total)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    result = None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
        else:
            log(line.rstrip())
    if proc.wait(timeout=60) != 0 or result is None:
        raise RuntimeError(f"python -m benchmarks.memory exited {proc.returncode}")
    return result


def measure(total: int, log=print) -> dict:
    from tagpipe.pipeline.deliver import Deliverer
    from tagpipe.pipeline.stage import settle
    from tagpipe.pipeline.transform import Transformer
    from tagpipe.transport.base import RAW_HITS

    checkpoint = total // 10
    chunk = 1000
    result: dict = {"events": total, "checkpoints": []}
    with tempfile.TemporaryDirectory(prefix="tagpipe-bench-memory-") as tmp:
        rt = _runtime(Path(tmp))
        transform, deliver = Transformer(rt), Deliverer(rt)

        def drain(stage, batch):
            moved = 0
            while msgs := rt.bus.pull(stage.subscription, batch):
                settle(rt.bus, stage.subscription, msgs, stage.handle(msgs))
                moved += len(msgs)
            return moved

        gc.collect()
        result["rss_start_mb"] = rss_mb()
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        done = 0
        while done < total:
            rt.bus.publish_many(RAW_HITS, _hits(done, chunk))
            drain(transform, 200)  # the local stack's transform batch
            drain(deliver, rt.config.delivery.pull_batch)
            done += chunk
            if done % checkpoint == 0:
                elapsed = time.perf_counter() - t0
                row = {"events": done, "rss_mb": rss_mb(), "seconds": elapsed, "events_per_s": done / elapsed}
                result["checkpoints"].append(row)
                log(f"    {done:>9,} events  RSS {row['rss_mb']:.0f} MiB  {row['events_per_s']:,.0f} events/s")
        result["seconds"] = time.perf_counter() - t0
        result["cpu_seconds"] = time.process_time() - cpu0
        result["peak_rss_mb"] = peak_rss_mb()
        counts = rt.store.outcome_counts()
        result["outcomes"] = {f"{d}/{o}": n for (d, o), n in counts.items()}
        result["store_mb"] = sum(f.stat().st_size for f in (Path(tmp) / "data").iterdir()) / 2**20
        rt.close()
    first = result["checkpoints"][0]["rss_mb"]
    result["rss_growth_after_first_checkpoint_mb"] = result["checkpoints"][-1]["rss_mb"] - first
    return result


def table(result: dict) -> list[str]:
    cps = result["checkpoints"]
    lines = [f"{result['events']:,} events in {result['seconds']:.0f} s ({result['events'] / result['seconds']:,.0f} events/s, "
             f"{result['events'] / result['cpu_seconds']:,.0f} per CPU-second, transform + deliver + stores, one thread); "
             f"outcomes {result['outcomes']}; store + queue on disk {result['store_mb']:,.0f} MiB.", "",
             "| events | " + " | ".join(f"{c['events'] // 1000:,}k" for c in cps) + " | peak |",
             "|---|" + "---:|" * (len(cps) + 1),
             f"| RSS MiB (start {result['rss_start_mb']:.0f}) | " + " | ".join(f"{c['rss_mb']:.0f}" for c in cps)
             + f" | {result['peak_rss_mb']:.0f} |"]
    return lines


if __name__ == "__main__":
    out = measure(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, log=lambda m: print(m, flush=True))
    print("RESULT " + json.dumps(out), flush=True)
