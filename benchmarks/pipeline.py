"""2 + 3. The whole local stack (`tagpipe run` as a subprocess: collect + transform + deliver in one
process) against FakeVendors (real HTTP on 127.0.0.1, Meta CAPI + GA4 MP, protocol checks on).

Two layouts, both `tagpipe run`: `threads` (collect on uvicorn plus worker threads: one process, one
GIL) and `processes` (`[server] workers = "process"`: the workers in a child process on the same queue):
what moving the workers out of the GIL buys.

  burst   N unique purchase events posted as fast as a few clients can (JSON API, `batch` events a
          request), then the time until the last one is at the fake Meta and every outcome is
          recorded: pipeline events/s (wall clock, the stack's process uses at most one core: GIL).
  paced   one event per request (gtag GET, unique ep.event_id) at a fixed rate for a few seconds,
          three rounds: time from collect's receipt of the hit (raw_hits.received_at) to the fake
          vendor receiving the request that holds it (p50/p99). The time from the sender is kept in
          the JSON only: with the stack, the fakes and the generator on two cores it mostly measures
          the generator falling behind.
  deliver events per vendor request and TCP connections opened to the fake vendors (from both runs).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from benchmarks import payloads
from benchmarks._util import cpu_seconds, read_response
from tests.e2e.stack import LocalStack, wait_until
from tests.fakes.vendors import FakeVendors

PIXEL = "123456789012345"


def stack_config(endpoint: str, workers: str = "threads") -> str:
    # rate_limit_per_ip = 0: the load comes from one IP (127.0.0.1), the per-IP limit would refuse it
    return f"""
[server]
rate_limit_per_ip = 0
workers = "{workers}"

[destinations.meta]
type = "meta"
pixel_id = "{PIXEL}"
endpoint = "{endpoint}"
access_token_env = "META_ACCESS_TOKEN"

[destinations.ga4]
type = "ga4"
measurement_id = "G-BENCH1"
endpoint = "{endpoint}"
"""


class Instrumented(FakeVendors):
    """FakeVendors that also notes when each Meta/GA4 event arrived, and each TCP connection accepted."""

    def start(self) -> None:
        super().start()
        self.arrivals: dict[str, float] = {}
        self.connections = 0
        self._tl = threading.local()
        server = self._server
        accept = server.process_request

        def process_request(request, client_address):
            self.connections += 1
            return accept(request, client_address)

        server.process_request = process_request
        route = self.route

        def timed_route(method, path, query, headers, body):
            self._tl.arrived = time.time()
            return route(method, path, query, headers, body)

        self.route = timed_route
        for state, key in ((self.meta, "event_id"), (self.ga4, None)):
            self._wrap_accept(state, key)

    def _wrap_accept(self, state, key) -> None:
        accept = state.accept

        def timed_accept(events, **extra):
            at = getattr(self._tl, "arrived", time.time())
            if key:
                for e in events:
                    self.arrivals[e.get(key)] = at
            accept(events, **extra)

        state.accept = timed_accept


async def _post_bursts(url: str, n: int, batch: int, clients: int, prefix: str) -> tuple[float, int]:
    """N events in requests of `batch`, `clients` at a time; returns (seconds spent, non-2xx answers)."""
    bodies = []
    for start in range(0, n, batch):
        events = [payloads.json_event(f"{prefix}-{i}") for i in range(start, min(n, start + batch))]
        bodies.append(json.dumps({"events": events}).encode())
    bad = 0
    queue = list(reversed(bodies))

    async def client():
        nonlocal bad
        async with httpx.AsyncClient(base_url=url, timeout=30,
                                     headers={"content-type": "application/json",
                                              "user-agent": payloads.CHROME_UA}) as c:
            while queue:
                r = await c.post("/events", content=queue.pop())
                bad += r.status_code != 200

    t = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), 300)
    return time.perf_counter() - t, bad


def _gtag_url(event_id: str) -> str:
    shape = payloads.gtag_get()
    base = shape.path.replace("en=page_view", "en=purchase")
    return f"{base}&ep.event_id={quote(event_id)}&cu=EUR&epn.value=10"


PACED_CONNECTIONS = 32


async def _paced(url: str, rate: float, seconds: float, prefix: str) -> tuple[dict[str, float], int]:
    """One gtag hit per request at `rate`/s for `seconds` (bounded): send time per event_id.

    Keep-alive HTTP/1.1 over asyncio streams, PACED_CONNECTIONS connections taking the hits in turn,
    each sent at its due time. (An httpx AsyncClient with a task per hit could not hold 500/s here: it
    took 19.8 s to send 3,000 hits even to a collect with nothing beside it, and that delay showed as
    "sender -> collect".)"""
    sent: dict[str, float] = {}
    bad = 0
    total = int(rate * seconds)
    shape = payloads.gtag_get()
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    head = "".join(f"{k}: {v}\r\n" for k, v in shape.headers.items()) + f"host: {host}:{port}\r\n\r\n"
    start = time.perf_counter()
    taken = 0

    async def connection() -> None:
        nonlocal bad, taken
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while taken < total:
                i, taken = taken, taken + 1
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                eid = f"{prefix}-{i}"
                t = time.time()
                writer.write(f"GET {_gtag_url(eid)} HTTP/1.1\r\n{head}".encode())
                if await read_response(reader) == b"204":
                    sent[eid] = t  # only accepted hits are waited for at the vendor
                else:
                    bad += 1
        finally:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(connection() for _ in range(PACED_CONNECTIONS))), seconds + 60)
    return sent, bad


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _outcomes(stack) -> int:
    return stack.store.query("SELECT COUNT(*) FROM outcomes")[0][0]


def run(quick: bool = False, log=print, layouts: list[str] | None = None) -> dict:
    layouts = layouts or (["threads"] if quick else ["threads", "processes"])
    result: dict = {"layouts": {}}
    for layout in layouts:
        log(f"  layout: {layout}")
        try:
            result["layouts"][layout] = _run_layout(layout, quick, log)
        except Exception as exc:  # one layout failing must not lose the other figures of the run
            log(f"  layout {layout} failed: {type(exc).__name__}: {exc}")
            result["layouts"][layout] = {"error": f"{type(exc).__name__}: {exc}"}
    first = result["layouts"][layouts[0]]
    result.update({k: first.get(k) for k in ("events", "batch", "clients")})
    return result


def _run_layout(layout: str, quick: bool, log) -> dict:
    n = 5_000 if quick else 20_000
    batch, clients = 20, 4
    rate, paced_s = (300, 3) if quick else (500, 6)
    result: dict = {"events": n, "batch": batch, "clients": clients}
    with tempfile.TemporaryDirectory(prefix="tagpipe-bench-pipeline-") as tmp, Instrumented() as fakes:
        env = {"META_ACCESS_TOKEN": fakes.meta_token, "GA4_API_SECRET": fakes.ga4_api_secret}
        workers = "threads" if layout == "threads" else "process"
        stack = LocalStack(Path(tmp) / "stack", stack_config(fakes.url, workers), env)
        try:
            stack.start()
            pids = [stack.proc.pid]
            if workers == "process":  # and its worker process
                pids += wait_until(lambda: _children(stack.proc.pid), 30, what="the worker process")
            # warm-up: first requests build the runtime, destinations, HTTP client
            asyncio.run(_post_bursts(stack.url, 200, batch, 2, "warm"))
            wait_until(lambda: fakes.meta.count >= 200, 60, what="warm-up events at the fake Meta")
            wait_until(lambda: _outcomes(stack) >= 400, 60, what="warm-up outcomes")
            base_meta, base_req_meta, base_req_ga4 = fakes.meta.count, len(fakes.meta.requests), len(fakes.ga4.requests)
            base_out, conns0 = _outcomes(stack), fakes.connections
            cpu0 = cpu_seconds(pids)
            t0 = time.perf_counter()
            post_s, bad = asyncio.run(_post_bursts(stack.url, n, batch, clients, "b"))
            wait_until(lambda: fakes.meta.count >= base_meta + n, 600, 0.01, what=f"{n} events at the fake Meta")
            t_meta = time.perf_counter() - t0
            wait_until(lambda: _outcomes(stack) >= base_out + 2 * n, 600, 0.05, what="every outcome recorded")
            t_all = time.perf_counter() - t0
            cpu = cpu_seconds(pids) - cpu0
            meta_reqs = len(fakes.meta.requests) - base_req_meta
            ga4_reqs = len(fakes.ga4.requests) - base_req_ga4
            result["burst"] = {
                "collect_seconds": post_s, "collect_events_per_s": n / post_s, "non2xx": bad,
                "seconds_to_last_vendor_event": t_meta, "seconds_to_all_outcomes": t_all,
                "events_per_s": n / t_all, "deliveries_per_s": 2 * n / t_all,
                "stack_cpu_seconds": cpu, "events_per_cpu_second": n / cpu if cpu else None,
                "meta_requests": meta_reqs, "meta_events_per_request": n / meta_reqs if meta_reqs else None,
                "ga4_requests": ga4_reqs, "ga4_events_per_request": n / ga4_reqs if ga4_reqs else None,
                "vendor_connections_opened": fakes.connections - conns0,
                "refused": len(fakes.meta.refused) + len(fakes.ga4.refused),
                "duplicates": len(fakes.meta.duplicates()),
            }
            log(f"  burst: {n:,} events (each to meta + ga4) in {t_all:.1f} s -> {n / t_all:,.0f} events/s "
                f"({n / cpu if cpu else 0:,.0f} per CPU-second); meta {n / max(1, meta_reqs):.0f} events/request, "
                f"ga4 {n / max(1, ga4_reqs):.1f}; {fakes.connections - conns0} new vendor connections")

            rounds = []
            for k in range(1 if quick else 3):  # a noisy machine: the median of three rounds
                rounds.append(_paced_round(stack, fakes, rate, paced_s, f"p{k}", log))
            # the median round by collect -> vendor (the stack's own time): sender -> collect also holds
            # the load generator's delays when the stack's processes and it share two cores
            rounds.sort(key=lambda r: r["collect_to_vendor_p99_ms"])
            result["paced"] = {**rounds[len(rounds) // 2], "rounds_p50_p99_ms": [
                (round(r["collect_to_vendor_p50_ms"]), round(r["collect_to_vendor_p99_ms"])) for r in rounds]}
        finally:
            stack.stop()
            if getattr(stack, "_store", None):
                stack._store.close()
    return result


def _paced_round(stack, fakes, rate: float, seconds: float, prefix: str, log) -> dict:
    base_meta, base_req_meta, conns0 = fakes.meta.count, len(fakes.meta.requests), fakes.connections
    sent, bad = asyncio.run(_paced(stack.url, rate, seconds, prefix))
    wait_until(lambda: fakes.meta.count >= base_meta + len(sent), 120, 0.01, what="paced events at Meta")
    lat = sorted((fakes.arrivals[e] - t) * 1000 for e, t in sent.items() if e in fakes.arrivals)
    q = statistics.quantiles(lat, n=100)
    # split it: sender -> collect (received_at, stamped by collect) and collect -> vendor
    received = dict(stack.store.query(
        "SELECT e.event_id, h.received_at FROM events e JOIN raw_hits h ON h.hit_id = e.hit_id"
        " WHERE e.event_id LIKE ?", (f"{prefix}-%",)))
    inside = sorted((fakes.arrivals[e] - received[e]) * 1000 for e in sent if e in received and e in fakes.arrivals)
    before = sorted((received[e] - t) * 1000 for e, t in sent.items() if e in received)
    qi = statistics.quantiles(inside, n=100) if len(inside) > 1 else [0.0] * 99
    qb = statistics.quantiles(before, n=100) if len(before) > 1 else [0.0] * 99
    meta_reqs = len(fakes.meta.requests) - base_req_meta
    log(f"  paced: {rate}/s one-event gtag hits for {seconds} s -> hit to Meta p50 {q[49]:.0f} ms, "
        f"p99 {q[98]:.0f} ms (collect -> Meta p50 {qi[49]:.0f} / p99 {qi[98]:.0f} ms; sender -> collect "
        f"p50 {qb[49]:.0f} / p99 {qb[98]:.0f} ms); {len(sent) / max(1, meta_reqs):.0f} events/request")
    return {
        "rate": rate, "seconds": seconds, "events": len(sent), "non2xx": bad,
        "hit_to_vendor_p50_ms": q[49], "hit_to_vendor_p99_ms": q[98], "hit_to_vendor_max_ms": lat[-1],
        "collect_to_vendor_p50_ms": qi[49], "collect_to_vendor_p99_ms": qi[98],
        "send_to_collect_p50_ms": qb[49], "send_to_collect_p99_ms": qb[98],
        "meta_requests": meta_reqs, "meta_events_per_request": len(sent) / max(1, meta_reqs),
        "vendor_connections_opened": fakes.connections - conns0,
    }


def table(result: dict) -> list[str]:
    lines = []
    for layout, r in result["layouts"].items():
        lines += [f"layout `{layout}`:", ""] + _layout_table(r) + [""]
    return lines


def _layout_table(result: dict) -> list[str]:
    b, p = result.get("burst", {}), result.get("paced", {})
    if not b:
        return [f"failed: {result.get('error')}"]
    return [
        "| figure | value |", "|---|---:|",
        f"| pipeline throughput, burst of {result['events']:,} events (JSON API, {result['batch']}/request), to Meta + GA4 | **{b['events_per_s']:,.0f} events/s** ({b['deliveries_per_s']:,.0f} deliveries/s) |",
        f"| same, per CPU-second of the stack process | {b['events_per_cpu_second'] or 0:,.0f} events/CPU-s |",
        f"| collect side of the burst | {b['collect_events_per_s']:,.0f} events/s, {b['non2xx']} non-2xx |",
        f"| hit (collect's receipt) to vendor request at {p.get('rate')}/s, gtag GET 1 event/hit, p50 / p99 (median of rounds {p.get('rounds_p50_p99_ms')}) | {p.get('collect_to_vendor_p50_ms', 0):.0f} ms / {p.get('collect_to_vendor_p99_ms', 0):.0f} ms |",
        f"| Meta events per request, burst / paced | {b['meta_events_per_request'] or 0:.0f} / {p.get('meta_events_per_request', 0):.1f} |",
        f"| GA4 events per request (burst; GA4 caps at 25) | {b['ga4_events_per_request'] or 0:.1f} |",
        f"| vendor TCP connections opened, burst / paced | {b['vendor_connections_opened']} / {p.get('vendor_connections_opened')} ({b['meta_requests'] + b['ga4_requests']} requests in the burst) |",
        f"| protocol refusals / duplicate event_ids at the fakes | {b['refused']} / {b['duplicates']} |",
    ]
