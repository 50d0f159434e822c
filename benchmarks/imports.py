"""4b. Cold start: what each function's main.py costs to import in a fresh interpreter, and for collect
the time to its first answer (import + functions-framework app + runtime + one gtag hit, in-process).

Fresh interpreters, median of `runs`, timed inside the interpreter (its own start, ~20 ms, is
shown apart). Also lists which heavy modules each function has loaded by then: collect should not
load vendor clients, hashing, httpx or the GCP clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._util import PY, ROOT, median

FUNCTIONS = ["collect", "transform", "deliver", "archive"]
HEAVY = ["httpx", "google.cloud.pubsub_v1", "google.cloud.bigquery", "grpc", "phonenumbers",
         "tagpipe.destinations", "tagpipe.hashing", "tagpipe.tagging", "tagpipe.monitoring.dashboard",
         "flask", "pydantic", "starlette", "functions_framework"]

PROBE = r"""
import json, sys, time
t = time.perf_counter()
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import main  # noqa
imported = time.perf_counter() - t
first = None
if sys.argv[3] == "collect":
    import asyncio
    from functions_framework.aio import create_asgi_app
    app = create_asgi_app("collect", sys.argv[1] + "/main.py", "http")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": "/g/collect", "raw_path": b"/g/collect", "root_path": "",
             "query_string": b"v=2&tid=G-ABC123&cid=1.2&en=page_view&dl=https%3A%2F%2Fshop.example%2F",
             "headers": [(b"host", b"shop.example"), (b"user-agent", b"Mozilla/5.0 Chrome/123.0")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080)}
    status = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(m):
        if m["type"] == "http.response.start":
            status.append(m["status"])
    asyncio.run(app(scope, receive, send))
    first = time.perf_counter() - t
    assert status == [204], status
heavy = {m: m in sys.modules for m in json.loads(sys.argv[4])}
print(json.dumps({"import_s": imported, "first_answer_s": first, "modules": len(sys.modules), "heavy": heavy}))
"""


def _probe(function: str, env: dict[str, str]) -> dict:
    out = subprocess.run([PY, "-c", PROBE, str(ROOT / "functions" / function), str(ROOT), function,
                          json.dumps(HEAVY)], capture_output=True, text=True, env=env, timeout=120, cwd="/")
    if out.returncode:
        raise RuntimeError(f"import probe for {function} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _top_imports(function: str, env: dict[str, str], n: int = 6) -> list[tuple[str, float]]:
    """The heaviest top-level packages by cumulative import time (-X importtime)."""
    out = subprocess.run([PY, "-X", "importtime", "-c", f"import sys; sys.path[:0] = [{str(ROOT / 'functions' / function)!r}, "
                          f"{str(ROOT)!r}]; import main"], capture_output=True, text=True, env=env, timeout=120, cwd="/")
    cumulative: dict[str, float] = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if not cum.isdigit() or name.startswith(" "):
            continue
        if not name.startswith(" ") and "." not in name.strip():
            cumulative[name.strip()] = max(cumulative.get(name.strip(), 0), int(cum) / 1e6)
    return sorted(cumulative.items(), key=lambda kv: -kv[1])[:n]


def run(quick: bool = False, log=print) -> dict:
    runs = 3 if quick else 7
    result: dict = {"runs": runs, "functions": {}}
    with tempfile.TemporaryDirectory(prefix="tagpipe-bench-import-") as tmp:
        config = Path(tmp) / "tagpipe.toml"
        config.write_text(f'[storage]\ndir = "{Path(tmp) / "data"}"\n')
        env = {**os.environ, "TAGPIPE_CONFIG": str(config), "PYTHONDONTWRITEBYTECODE": "0"}
        bare = median([_bare(env) for _ in range(runs)])
        result["bare_interpreter_s"] = bare
        for function in FUNCTIONS:
            if not (ROOT / "functions" / function / "main.py").exists():
                continue
            _probe(function, env)  # warm the .pyc cache: a deployed function has its bytecode compiled
            probes = [_probe(function, env) for _ in range(runs)]
            row = {
                "import_s": median(p["import_s"] for p in probes),
                "first_answer_s": median(p["first_answer_s"] for p in probes),
                "modules": probes[0]["modules"],
                "heavy_loaded": [m for m, loaded in probes[0]["heavy"].items() if loaded],
                "top": _top_imports(function, env),
            }
            result["functions"][function] = row
            log(f"  {function}: import {row['import_s'] * 1000:.0f} ms, {row['modules']} modules"
                + (f", first answer {row['first_answer_s'] * 1000:.0f} ms" if row["first_answer_s"] else ""))
    return result


def _bare(env) -> float:
    """Wall time of a bare interpreter start (`python -c pass`): what every cold start pays first."""
    t = time.perf_counter()
    subprocess.run([PY, "-c", "pass"], env=env, timeout=60, check=True)
    return time.perf_counter() - t


def table(result: dict) -> list[str]:
    lines = ["| function | import main.py | first answer (import + app + runtime + 1 hit) | modules loaded | heavy modules loaded | heaviest imports (cumulative) |",
             "|---|---:|---:|---:|---|---|"]
    for name, r in result["functions"].items():
        first = f"{r['first_answer_s'] * 1000:.0f} ms" if r["first_answer_s"] else ""
        top = ", ".join(f"{m} {s * 1000:.0f}" for m, s in r["top"])
        lines.append(f"| {name} | {r['import_s'] * 1000:.0f} ms | {first} | {r['modules']} | "
                     f"{', '.join(r['heavy_loaded']) or '-'} | {top} (ms) |")
    return lines
