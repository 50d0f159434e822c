"""Start the real local stack (`tagpipe run`) as a subprocess, the way a user does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tagpipe.storage.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy; fail with `what` after timeout. Not a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class LocalStack:
    def __init__(self, workdir: Path, config_text: str, env: dict[str, str] | None = None,
                 data_dir: Path | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "tagpipe.toml"
        data_dir = data_dir or workdir / "data"
        self.config_path.write_text(f'[storage]\ndir = "{data_dir}"\n\n{config_text}')
        self.data_dir = data_dir
        self.env = {**os.environ, **(env or {}), "TAGPIPE_CONFIG": str(self.config_path)}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "stack.log"
        self._store: SqliteStore | None = None

    def start(self) -> LocalStack:
        self.port = self.port or free_port()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tagpipe.ops.cli", "run", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

        def healthy():
            if self.proc.poll() is not None:
                raise AssertionError(f"stack exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, 30, what="the local stack to answer /healthz")
        return self

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL the stack and close this test's own store connection (a restart or an unmount of
        the data directory needs it gone; `store` reopens it)."""
        self.stop(signal.SIGKILL)
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def store(self) -> SqliteStore:
        if self._store is None:
            self._store = SqliteStore(self.data_dir)
        return self._store

    def outcomes(self) -> list[tuple]:
        return self.store.query("SELECT hit_id, event_uid, destination, outcome, reason FROM outcomes")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._store:
            self._store.close()
