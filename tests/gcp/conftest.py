"""Real local stand-ins for the GCP services, started once per session.

    pubsub_emulator     the Pub/Sub emulator jar of the Google Cloud CLI (java)
    firestore_emulator  the Firestore emulator jar of the Google Cloud CLI (java)
    bqemulator          PyPI bqemulator (DuckDB), from its own venv (scripts/tools.sh)

Each one binds 127.0.0.1 on a free port, is waited for until it answers, and is stopped by
killing its own process group. A missing java/jar skips the tests with the reason, unless
TAGPIPE_REQUIRE_EMULATORS=1 (CI), which turns the skip into a failure. bqemulator lives in a
separate venv (its pins clash with ours); it is required only with TAGPIPE_REQUIRE_BQEMULATOR=1.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagpipe.transport.base import DEAD_LETTER, DELIVERIES, RAW_HITS, Subscription

ROOT = Path(__file__).resolve().parents[2]
PUBSUB_JARS = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar"
FIRESTORE_JAR = "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
TOOLS = Path(os.environ.get("TAGPIPE_TOOLS_DIR") or ROOT / ".venv" / "tools")

# Fast test topology: the emulator's minimum of 5 attempts, no backoff to speak of.
FAST = {
    s.name: s
    for s in (
        Subscription("transform", RAW_HITS, max_delivery_attempts=5, min_backoff=0, max_backoff=1, ack_deadline=10),
        Subscription("deliver", DELIVERIES, max_delivery_attempts=5, min_backoff=0, max_backoff=1, ack_deadline=10),
        Subscription("dead-letter-archive", DEAD_LETTER, max_delivery_attempts=1000, dead_letter_topic=None),
    )
}


def unavailable(reason: str, flag: str = "TAGPIPE_REQUIRE_EMULATORS") -> None:
    if os.environ.get(flag) == "1":
        pytest.fail(f"{reason} ({flag}=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before answering")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


class Server:
    """A child process in its own process group, stopped with that group."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None,
                 log: Path | None = None, timeout: float = 30.0) -> None:
        self.name, self.port = name, port
        self.log = log
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self._out = out
        self.proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})}, cwd=ROOT,
        )
        try:
            wait_for_port(port, self.proc, name, timeout)
        except Exception:
            self.stop()
            raise

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self._out is not subprocess.DEVNULL:
            self._out.close()


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory) -> Iterator[Server]:
    java = shutil.which("java")
    jars = sorted(glob.glob(PUBSUB_JARS))
    if not java or not jars:
        unavailable(
            "Pub/Sub emulator not found: needs java and the Google Cloud CLI's pubsub-emulator"
            f" ({PUBSUB_JARS}); install with `apt-get install google-cloud-cli-pubsub-emulator default-jre`"
        )
    port = free_port()
    log = tmp_path_factory.mktemp("pubsub") / "emulator.log"
    server = Server("pubsub emulator", [java, "-jar", jars[-1], "--host=127.0.0.1", f"--port={port}"], port, log=log)
    old = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = server.host
    yield server
    server.stop()
    if old is None:
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)
    else:
        os.environ["PUBSUB_EMULATOR_HOST"] = old


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory) -> Iterator[Server]:
    java = shutil.which("java")
    if not java or not os.path.exists(FIRESTORE_JAR):
        unavailable(
            f"Firestore emulator not found: needs java and {FIRESTORE_JAR}"
            " (`apt-get install google-cloud-cli-firestore-emulator default-jre`)"
        )
    port = free_port()
    log = tmp_path_factory.mktemp("firestore") / "emulator.log"
    argv = [java, "-Duser.language=en", "-cp", FIRESTORE_JAR,
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
            "--host=127.0.0.1", f"--port={port}"]
    server = Server("firestore emulator", argv, port, log=log, timeout=60)
    yield server
    server.stop()


def bqemulator_python() -> str | None:
    explicit = os.environ.get("TAGPIPE_BQEMULATOR_PYTHON")
    if explicit:
        return explicit
    candidate = TOOLS / "bqemulator" / "bin" / "python"
    if candidate.exists():
        return str(candidate)
    try:
        import bqemulator  # noqa: F401
    except ImportError:
        return None
    return sys.executable


@pytest.fixture(scope="session")
def bqemulator(tmp_path_factory) -> Iterator[Server]:
    python = bqemulator_python()
    if python is None:
        unavailable(
            "bqemulator not installed: run `scripts/tools.sh` (it creates .venv/tools/bqemulator;"
            " its pins clash with the project's, so it gets its own venv) or set TAGPIPE_BQEMULATOR_PYTHON",
            flag="TAGPIPE_REQUIRE_BQEMULATOR",
        )
    port = free_port()
    log = tmp_path_factory.mktemp("bq") / "bqemulator.log"
    argv = [python, str(Path(__file__).with_name("bqemulator_launcher.py")), "start",
            "--rest-port", str(port), "--grpc-port", "0", "--log-level", "warning", "--project", "tagpipe-test"]
    server = Server("bqemulator", argv, port, log=log, env={"BQEMU_ENABLE_FORMAT_EXTENSIONS": "false"}, timeout=60)
    yield server
    server.stop()


@pytest.fixture
def project() -> str:
    """A project id of its own per test: nothing leaks between tests on one emulator."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bus(pubsub_emulator, project):
    from tagpipe.transport.pubsub import PubSubBus

    bus = PubSubBus(project, "tagpipe", FAST, publish_timeout=5.0)
    bus.ensure_topology()
    yield bus
    bus.close()


def pull_until(bus, subscription: str, count: int = 1, timeout: float = 15.0):
    """Pull until `count` messages have arrived (or the timeout): emulator delivery is async."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        out += bus.pull(subscription, 100, wait=0.5)
    return out


def wait_dead_lettered(bus, source: str, timeout: float = 15.0):
    """Pull the dead-letter archive until something arrives. The emulator moves a message to the
    dead-letter topic only when its source subscription is pulled again after the last nack
    (Pub/Sub does it in the background), so keep pulling the source too (expecting nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stray = bus.pull(source, 10, wait=0.5)
        assert stray == [], f"{source} redelivered after max attempts: {stray}"
        dead = bus.pull("dead-letter-archive", 10, wait=0.5)
        if dead:
            return dead
    return []
