"""Scheduled drain vs push, on the Pub/Sub emulator: events per invocation and per vendor request.

    .venv/bin/python -m benchmarks.drain [--events 2000] [--rounds 2]

Both shapes start from the same backlog: N raw hits are turned into delivery tasks for Meta (the
fake vendor) on the per-destination subscription `deliver-meta`, as Terraform creates it. One
destination only: the emulator ignores subscription filters, so with two every deliver-<id>
subscription would also hold the other's tasks (acked unhandled by the drain, but they would halve
its batches, which Pub/Sub proper never does). Then:

- schedule: one POST /drain per stage to the real functions (functions/*/main.py, served in-process
  by functions-framework's ASGI app): transform drains raw-hits, deliver drains deliver-meta.
- push: the deliver function runs as a real functions-framework server (FUNCTION_USE_ASGI=true, as
  deployed) and deliver-meta is switched to push to it (ModifyPushConfig): the emulator pushes one
  message per request, deliver's PushBatcher groups the concurrent ones.

Reported per shape: invocations, events per invocation, events/s, vendor requests and events per
vendor request (Meta takes up to 1,000). The emulator is not Pub/Sub: its push concurrency and
pull sizes differ from production, so read the ratios, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
DESTINATIONS = ("meta",)


def _config(folder: Path, vendors_url: str) -> Path:
    path = folder / "tagpipe.toml"
    path.write_text(f"""
[storage]
dir = "{folder / 'data'}"

[destinations.meta]
type = "meta"
pixel_id = "123456789012345"
endpoint = "{vendors_url}"
access_token_env = "META_ACCESS_TOKEN"
""")
    return path


def _hits(rt, n: int, tag: str) -> None:
    from tagpipe.models import RawHit
    from tagpipe.transport.base import RAW_HITS

    items = []
    for i in range(n):
        body = {"event_name": "purchase", "event_id": f"{tag}-{i}", "client_id": f"{i}.1", "value": i % 90 + 1,
                "currency": "EUR", "page_location": "https://shop.example/thanks"}
        items.append((RawHit(source="json", body=json.dumps(body), headers={"user-agent": UA})
                      .model_dump_json().encode(), None))
    for start in range(0, n, 500):
        rt.bus.publish_many(RAW_HITS, items[start:start + 500])


def _drain_all(client, body: dict, want: int, timeout: float = 120.0) -> list[dict]:
    """POST /drain until `want` messages were pulled (the emulator's first pulls can come back short)."""
    runs, deadline = [], time.monotonic() + timeout
    while sum(r["pulled"] - r["foreign"] for r in runs) < want and time.monotonic() < deadline:
        r = client.post("/drain", json=body)
        assert r.status_code == 200, r.text
        runs.append(r.json())
    return runs


def one_round(n: int, tmp: Path, emulator_host: str, round_no: int, push: bool = True) -> dict:
    import functions_framework.aio
    from starlette.testclient import TestClient

    from tagpipe.config import load_config
    from tagpipe.runtime import build_runtime, set_runtime
    from tests.fakes.vendors import FakeVendors
    from tests.gcp.conftest import Server, free_port

    out: dict = {}
    project = f"bench-drain-{round_no}-{int(time.time())}"
    with FakeVendors() as fakes:
        env = {"TAGPIPE_TRANSPORT": "pubsub", "TAGPIPE_STORE": "sqlite", "TAGPIPE_GCP_PROJECT": project,
               "TAGPIPE_TOPIC_PREFIX": "tagpipe", "META_ACCESS_TOKEN": fakes.meta_token,
               "GA4_API_SECRET": fakes.ga4_api_secret, "PUBSUB_EMULATOR_HOST": emulator_host,
               "TAGPIPE_DRAIN_SECONDS": "60", "TAGPIPE_LOG_LEVEL": "WARNING"}
        os.environ.update(env)
        folder = tmp / f"round{round_no}"
        folder.mkdir()
        config = _config(folder, fakes.url)
        os.environ["TAGPIPE_CONFIG"] = str(config)
        rt = build_runtime(load_config(config))
        rt.bus.ensure_topology(destinations=DESTINATIONS)
        set_runtime(rt)
        try:
            apps = {f: TestClient(functions_framework.aio.create_asgi_app(f, str(ROOT / "functions" / f / "main.py")))
                    for f in ("transform", "deliver")}
            # ---- schedule: transform drain, then one deliver drain for meta
            _hits(rt, n, f"s{round_no}")
            t0 = time.perf_counter()
            runs = _drain_all(apps["transform"], {}, n)
            out["transform_drain"] = _summary(runs, time.perf_counter() - t0)
            fakes.reset()
            t0 = time.perf_counter()
            runs = _drain_all(apps["deliver"], {"destination": "meta"}, n)
            out["deliver_drain"] = _summary(runs, time.perf_counter() - t0)
            out["deliver_drain"] |= _vendor(fakes.meta)

            if not push:
                return out
            # ---- push: the same backlog on deliver-meta, pushed to a functions-framework server
            _hits(rt, n, f"p{round_no}")
            _drain_all(apps["transform"], {}, n)
            fakes.reset()
            port = free_port()
            server_env = {**env, "TAGPIPE_CONFIG": str(config), "FUNCTION_TARGET": "deliver",
                          "FUNCTION_SOURCE": str(ROOT / "functions" / "deliver" / "main.py"),
                          "FUNCTION_SIGNATURE_TYPE": "http", "FUNCTION_USE_ASGI": "true",
                          "HOST": "127.0.0.1", "PORT": str(port)}
            server = Server("deliver (functions-framework)", [sys.executable, "-m", "functions_framework"], port,
                            env=server_env, log=folder / "deliver.log")
            try:
                t0 = time.perf_counter()
                rt.bus.subscriber().modify_push_config(request={
                    "subscription": rt.bus.subscription_path("deliver-meta"),
                    "push_config": {"push_endpoint": f"http://127.0.0.1:{port}/"}})
                deadline = time.monotonic() + 300
                while fakes.meta.count < n and time.monotonic() < deadline:
                    time.sleep(0.05)
                elapsed = time.perf_counter() - t0
            finally:
                server.stop()
            requests = _push_requests(folder / "deliver.log")
            out["deliver_push"] = {"invocations": requests or n, "events": fakes.meta.count,
                                   "events_per_invocation": round(fakes.meta.count / max(1, requests or n), 2),
                                   "seconds": round(elapsed, 2), "events_per_s": round(fakes.meta.count / elapsed, 1)}
            out["deliver_push"] |= _vendor(fakes.meta)
        finally:
            set_runtime(None)
            rt.close()
    return out


def _push_requests(log: Path) -> int:
    """POST / lines in the server's access log (0 when it logs none: then one push per message)."""
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text(errors="replace").splitlines() if '"POST / HTTP' in line)


def _summary(runs: list[dict], elapsed: float) -> dict:
    pulled = sum(r["pulled"] - r["foreign"] for r in runs)
    inside = sum(r["seconds"] for r in runs)
    return {"invocations": len(runs), "events": pulled, "events_per_invocation": round(pulled / max(1, len(runs)), 1),
            "seconds": round(elapsed, 2), "events_per_s": round(pulled / elapsed, 1),
            "events_per_s_inside_drain": round(pulled / inside, 1) if inside else None,
            "batches": sum(r["batches"] for r in runs),
            "acked": sum(r["acked"] for r in runs), "nacked": sum(r["nacked"] for r in runs)}


def _vendor(state) -> dict:
    requests = [r for r in state.requests if r.get("status") == 200]
    return {"vendor_requests": len(state.requests), "events_at_vendor": state.count,
            "events_per_vendor_request": round(state.count / max(1, len(requests)), 1),
            "duplicates": len(state.duplicates())}


def main(argv: list[str] | None = None) -> int:
    from benchmarks._util import start_pubsub_emulator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-push", action="store_true", help="drains only (the push shape takes minutes)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            emulator = start_pubsub_emulator(Path(tmp))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 2
        try:
            results = [one_round(args.events, Path(tmp), emulator.host, i, push=not args.no_push) for i in range(args.rounds)]
        finally:
            emulator.stop()
    for i, r in enumerate(results):
        print(f"round {i}: " + json.dumps(r))
    for shape in ("transform_drain", "deliver_drain", "deliver_push"):
        for key in ("events_per_invocation", "events_per_s", "events_per_vendor_request"):
            values = [r[shape][key] for r in results if shape in r and key in r[shape]]
            if values:
                print(f"{shape:16} {key:26} {min(values)}-{max(values)} (median {statistics.median(values)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
