"""1. collect under load, next to a functions-framework hello-world on the same server settings.

Each server is one process (one core at most); wrk (1 thread) runs on the other core.
Modes (benchmarks/_serve.py):
  gcf-asgi       what Cloud Functions gen2 runs for our async functions (FUNCTION_USE_ASGI): gunicorn,
                 1 worker, UvicornWorker (loop/http "auto"): uvloop + httptools, which tagpipe's
                 requirements bring. The deployed configuration
  gcf-asgi-h11   the same worker forced to asyncio + h11 (the deployed configuration before uvloop and
                 httptools were in the requirements): both ratios are reported, since the hello-world
                 also gets faster with uvloop + httptools
  uvicorn        uvicorn.Server as `tagpipe run` starts it (loop/http "auto")
  gcf-gthread    functions-framework's default serving (gunicorn gthread, THREADS = concurrency 80):
                 sync functions only, so the hello-world alone, for reference
collect runs on the local bus (a SQLite commit per hit, as in `tagpipe run`), with no worker threads
beside it in the process: the pipeline benchmark (2.) measures the whole stack.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks import payloads
from benchmarks._util import PY, ROOT, Proc, cpu_seconds, free_port, run_load

HELLO = str(ROOT / "benchmarks" / "hello" / "main.py")
COLLECT = str(ROOT / "functions" / "collect" / "main.py")
MODES = {
    "gcf-asgi": "functions-framework --asgi (gen2 deploy): gunicorn + UvicornWorker, uvloop + httptools",
    "gcf-asgi-h11": "the same worker forced to asyncio + h11 (gen2 without uvloop/httptools)",
    "uvicorn": "uvicorn.Server as `tagpipe run` (auto: uvloop + httptools when installed)",
}
CONCURRENCY = 80  # terraform: collect's max_instance_request_concurrency
NOOP_SUFFIX = ", no-op function (collect's ceiling)"
NOOP = payloads.gtag_get().name + NOOP_SUFFIX
TARGET_RATIO = 0.60  # issue 9: collect >= 60 % of the hello-world's requests/s


def own_work_budget(hello_rps: float, noop_rps: float, collect_rps: float) -> dict:
    """Microseconds a request: what the no-op costs beyond the hello-world (bigger request and answer),
    what collect's own work costs beyond the no-op, and what that work may cost for TARGET_RATIO."""
    def us(rps: float) -> float:
        return 1e6 / rps

    return {"hello_us": us(hello_rps), "noop_us": us(noop_rps), "collect_us": us(collect_rps),
            "own_work_us": us(collect_rps) - us(noop_rps),
            "budget_us": us(TARGET_RATIO * hello_rps) - us(noop_rps),
            "ceiling_ratio": noop_rps / hello_rps}


def _have_fast() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools"))


def _serve(mode: str, target: str, source: str, env: dict[str, str]) -> tuple[Proc, int]:
    port = free_port()
    proc = Proc([PY, "-m", "benchmarks._serve", mode, target, source, str(port)], env)
    proc.start(port)
    return proc, port


def _measure(proc: Proc, port: int, shape, seconds: float, **kw) -> dict:
    pids = proc.pids()
    before = cpu_seconds(pids)
    load = run_load(port, shape, seconds, **kw)
    cpu = cpu_seconds(pids) - before
    row = load.as_dict()
    row["server_cpu"] = cpu / load.seconds if load.seconds else None  # cores the server used
    return row


def run(quick: bool = False, modes: list[str] | None = None, log=print) -> dict:
    seconds = 2.0 if quick else 4.0
    modes = modes or (["gcf-asgi", "gcf-asgi-h11"] if quick else list(MODES))
    fast = _have_fast()
    if not fast and any(m in ("gcf-asgi", "uvicorn") for m in modes):
        log("  WARNING uvloop/httptools are not installed (make install): gcf-asgi runs asyncio + h11 here, "
            "not the deployed configuration")
    hello = payloads.Shape("hello-world", "GET", "/")
    shapes = payloads.collect_shapes()
    gtag = shapes[0]
    noop = payloads.Shape(gtag.name + NOOP_SUFFIX, gtag.method, gtag.path, gtag.headers, gtag.body)
    result: dict = {"seconds": seconds, "connections": 50, "modes": {},
                    "gcf_asgi_stack": "uvloop + httptools" if fast else "asyncio + h11 (uvloop/httptools missing)"}
    with tempfile.TemporaryDirectory(prefix="tagpipe-bench-collect-") as tmp:
        config = Path(tmp) / "tagpipe.toml"
        # one load generator on 127.0.0.1 is one client IP: the per-IP rate limit (server.rate_limit_per_ip,
        # 100/s by default) would answer 429 to nearly all of it
        config.write_text(f'[storage]\ndir = "{Path(tmp) / "data"}"\n\n[server]\nrate_limit_per_ip = 0\n')
        env = {"TAGPIPE_CONFIG": str(config), "TAGPIPE_TRANSPORT": "local", "TAGPIPE_STORE": "sqlite"}
        for mode in modes:
            rounds = 1 if quick or mode != "gcf-asgi" else 3
            h_proc, h_port = _serve(mode, "hello", HELLO, env)
            n_proc, n_port = _serve(mode, "collect_noop", HELLO, env)
            c_proc, c_port = _serve(mode, "collect", COLLECT, env)
            try:
                runs: dict[str, list[dict]] = {"hello-world": [], NOOP: []}
                for _ in range(rounds):  # interleaved, so a noisy spell hits both sides
                    runs["hello-world"].append(_measure(h_proc, h_port, hello, seconds))
                    runs[NOOP].append(_measure(n_proc, n_port, noop, seconds))
                    for shape in shapes:
                        runs.setdefault(shape.name, []).append(_measure(c_proc, c_port, shape, seconds))
                rows = {}
                for name, rs in runs.items():
                    best = sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]  # the median run
                    rows[name] = {**best, "runs_rps": [round(r["rps"]) for r in rs]}
                hello_rps = rows["hello-world"]["rps"]
                rows[NOOP]["ratio"] = rows[NOOP]["rps"] / hello_rps
                for shape in shapes:
                    row = rows[shape.name]
                    row["ratio"] = row["rps"] / hello_rps
                    row["events_per_s"] = row["rps"] * shape.events
                    half = _measure(c_proc, c_port, shape, seconds, target_rps=row["rps"] / 2)
                    row["half"] = half
                rows["hello-world"]["half"] = _measure(h_proc, h_port, hello, seconds, target_rps=hello_rps / 2)
                # at collect's half load, not its own: the server's tail at that rate, without collect's work
                rows[NOOP]["half"] = _measure(n_proc, n_port, noop, seconds, target_rps=rows[gtag.name]["rps"] / 2)
                result["modes"][mode] = rows
                result.setdefault("budget", {})[mode] = own_work_budget(
                    hello_rps, rows[NOOP]["rps"], rows[gtag.name]["rps"])
                for name, row in rows.items():
                    if row["errors"] > 0.01 * max(1, row["requests"]):
                        log(f"  WARNING {mode} {name}: {row['errors']} of {row['requests']} requests failed or non-2xx")
                log(f"  {mode}: hello {hello_rps:,.0f} req/s; " + ", ".join(
                    f"{s.name} {rows[s.name]['rps']:,.0f} ({rows[s.name]['ratio']:.0%})" for s in shapes))
            finally:
                c_proc.stop()
                n_proc.stop()
                h_proc.stop()
        if not quick:
            gt_port = free_port()
            with Proc([PY, "-m", "benchmarks._serve", "gcf-gthread", "hello_sync", HELLO, str(gt_port)],
                      {**env, "THREADS": str(CONCURRENCY)}) as proc:
                proc.start(gt_port)
                row = _measure(proc, gt_port, hello, seconds)
                result["gthread_hello"] = row
                log(f"  gcf-gthread (threads={CONCURRENCY}): hello {row['rps']:,.0f} req/s")
    return result


def _half(half: dict) -> str:
    return f"{half['p99_ms']:.1f} ({half['rps']:,.0f})" if half else ""


def table(result: dict) -> list[str]:
    lines = ["| server | endpoint | req/s | events/s | vs hello | p50 ms | p99 ms | p99 at half load (req/s) | server CPU | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, rows in result["modes"].items():
        label = f"{mode} ({result['gcf_asgi_stack']})" if mode == "gcf-asgi" and "gcf_asgi_stack" in result else mode
        for name, r in rows.items():
            half = r.get("half") or {}
            lines.append(
                f"| {label} | {name} | {r['rps']:,.0f} | {r.get('events_per_s', r['rps']):,.0f} | "
                f"{r.get('ratio', 1.0):.0%} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{_half(half)} | {r.get('server_cpu') or 0:.2f} | "
                f"{r['errors'] + half.get('errors', 0)} |")
    if "gthread_hello" in result:
        r = result["gthread_hello"]
        lines.append(f"| gcf-gthread (threads={CONCURRENCY}) | hello-world (sync) | {r['rps']:,.0f} | | | "
                     f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | | {r.get('server_cpu') or 0:.2f} | {r['errors']} |")
    for mode, b in (result.get("budget") or {}).items():
        lines.append("")
        lines.append(
            f"{mode}: a request costs the hello-world {b['hello_us']:.0f} µs, the no-op {b['noop_us']:.0f} µs "
            f"(so collect can keep at most {b['ceiling_ratio']:.0%} of the hello-world), collect (gtag GET) "
            f"{b['collect_us']:.0f} µs: collect's own work is {b['own_work_us']:.0f} µs a request; "
            f"{TARGET_RATIO:.0%} of the hello-world leaves it {b['budget_us']:.0f} µs.")
    return lines
