"""Processes, ports and the load generator (wrk when installed, else a bounded asyncio generator)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


class Proc:
    """A server subprocess in its own process group; stopped by its own pid, never by name."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.args, self.env = args, {**os.environ, **(env or {})}
        self._own_log = log is None  # a temporary log of ours: removed when the process stops
        self.log = log or Path(tempfile.mkstemp(prefix="tagpipe-bench-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    def spawn(self) -> Proc:
        """Start it without waiting for anything (a process with no HTTP port)."""
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def start(self, port: int, health: str = "/", timeout: float = 30.0) -> Proc:
        import httpx  # here, not at the top: the cold-start child imports this module and must not pay for it

        self.spawn()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(self.args)} exited {self.proc.returncode}:\n"
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}{health}", timeout=1).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{' '.join(self.args)} did not answer on :{port} within {timeout}s")
            time.sleep(0.1)

    def pids(self) -> list[int]:
        """The server's pid and its children's (gunicorn's worker): what to sample with py-spy or /proc."""
        if self.proc is None:
            return []
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()] or [self.proc.pid]

    def stop(self, timeout: float = 15.0) -> None:
        try:
            self._stop(timeout)
        finally:
            if self._own_log:
                self.log.unlink(missing_ok=True)

    def _stop(self, timeout: float) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- load generation
@dataclass
class Load:
    generator: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int  # socket errors + non-2xx answers
    connections: int
    target_rps: float | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


WRK_SCRIPT = r"""
local f = io.open(os.getenv("BENCH_BODY_FILE"), "rb")
wrk.body = f:read("*a")
f:close()
wrk.method = os.getenv("BENCH_METHOD")
for line in io.lines(os.getenv("BENCH_HEADERS_FILE")) do
  local k, v = line:match("^([^:]+): (.*)$")
  if k then wrk.headers[k] = v end
end
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pause > 0 then
  -- a random think time (mean = pause): a constant one keeps the 50 connections in lock-step waves
  -- that queue behind each other, a latency no real traffic has
  math.randomseed(os.time())
  delay = function() return math.random(0, 2 * pause) end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"errors":%d,"status":%d,"p50":%d,"p90":%d,"p99":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None and os.environ.get("BENCH_NO_WRK") != "1"


def run_load(port: int, shape, seconds: float, connections: int = 50, target_rps: float | None = None) -> Load:
    """Closed-loop load for `seconds` (bounded), or paced at about target_rps when given."""
    if have_wrk():
        return _wrk(port, shape, seconds, connections, target_rps)
    return asyncio.run(_asyncio_load(port, shape, seconds, connections, target_rps))


def _wrk(port, shape, seconds, connections, target_rps) -> Load:
    with tempfile.TemporaryDirectory(prefix="tagpipe-wrk-") as tmp:
        tmp = Path(tmp)
        (tmp / "s.lua").write_text(WRK_SCRIPT)
        (tmp / "body").write_bytes(shape.body)
        (tmp / "headers").write_text("".join(f"{k}: {v}\n" for k, v in shape.headers.items()))
        env = {**os.environ, "BENCH_BODY_FILE": str(tmp / "body"), "BENCH_HEADERS_FILE": str(tmp / "headers"),
               "BENCH_METHOD": shape.method}
        if target_rps:
            # each connection waits a random delay (mean D) between answer and next request: rate ~ connections / D
            env["BENCH_DELAY_MS"] = str(max(1, round(connections * 1000 / target_rps)))
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
             "-s", str(tmp / "s.lua"), f"http://127.0.0.1:{port}{shape.path}"],
            capture_output=True, text=True, env=env, timeout=seconds + 60,
        ).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    r = json.loads(line[len("BENCH_JSON "):])
    secs = r["duration_us"] / 1e6
    return Load("wrk", r["requests"], secs, r["requests"] / secs, r["p50"] / 1000, r["p90"] / 1000,
                r["p99"] / 1000, r["errors"] + r["status"], connections, target_rps)


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """Read one HTTP/1.1 response (status line, headers, a Content-Length body); its status code."""
    status = (await reader.readline()).split(b" ")[1]
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if length:
        await reader.readexactly(length)
    return status


async def _asyncio_load(port, shape, seconds, connections, target_rps) -> Load:
    """Fallback generator: keep-alive HTTP/1.1 over asyncio streams, one task per connection."""
    head = [f"{shape.method} {shape.path} HTTP/1.1", f"host: 127.0.0.1:{port}"]
    head += [f"{k}: {v}" for k, v in shape.headers.items()]
    if shape.body or shape.method == "POST":
        head.append(f"content-length: {len(shape.body)}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + shape.body
    latencies: list[float] = []
    errors = 0
    pause = connections / target_rps if target_rps else 0.0
    start = time.perf_counter()
    deadline = start + seconds

    async def conn():
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                writer.write(request)
                status = await read_response(reader)
                latencies.append(time.perf_counter() - t)
                if not status.startswith(b"2"):
                    errors += 1
                if pause:
                    await asyncio.sleep(random.uniform(0, 2 * pause))  # jittered, as in the wrk script
        except (OSError, asyncio.IncompleteReadError, IndexError):
            errors += 1
        finally:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(conn() for _ in range(connections))), seconds + 30)
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Load("asyncio", len(latencies), elapsed, len(latencies) / elapsed, q[49] * 1000, q[89] * 1000,
                q[98] * 1000, errors, connections, target_rps)


def cpu_seconds(pids: list[int]) -> float:
    """user+system CPU time used so far by these processes (from /proc; 0 where unreadable)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_mb(pid: int | None = None) -> float:
    """Current resident set size in MiB (VmRSS) of a process, this one by default."""
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb(pid: int | None = None) -> float:
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_pubsub_emulator(folder: Path):
    """The Google Cloud CLI's Pub/Sub emulator on a free loopback port, as tests/gcp/conftest.py starts it
    (a Server: .host, .stop()); RuntimeError when java or the emulator is missing."""
    import glob

    from tests.gcp.conftest import PUBSUB_JARS, Server, free_port

    java, jars = shutil.which("java"), sorted(glob.glob(PUBSUB_JARS))
    if not java or not jars:
        raise RuntimeError(f"needs java and the Pub/Sub emulator ({PUBSUB_JARS})")
    port = free_port()
    return Server("pubsub emulator", [java, "-jar", jars[-1], "--host=127.0.0.1", f"--port={port}"], port,
                  log=folder / "emulator.log")
