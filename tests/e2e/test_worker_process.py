"""`[server] workers = "process"`: transform/deliver/archive in a child process of `tagpipe run`."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import LocalStack, wait_until

CONFIG = """
[server]
workers = "process"

[destinations.dry_run]
type = "log"
"""


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


def post(stack: LocalStack, event_id: str) -> str:
    r = httpx.post(f"{stack.url}/events", json={"event_name": "purchase", "event_id": event_id, "value": 1,
                                               "currency": "EUR", "page_location": "https://shop.example/"})
    assert r.status_code == 200, r.text
    return r.json()["hit_id"]


def delivered(stack: LocalStack, hit_id: str) -> bool:
    return any(o[0] == hit_id and o[3] == "delivered" for o in stack.outcomes())


@pytest.fixture
def stack(tmp_path):
    with LocalStack(tmp_path / "stack", CONFIG) as s:
        yield s


def test_the_workers_run_in_a_child_that_is_restarted_and_never_outlives_the_stack(stack):
    hit = post(stack, "wp-1")
    wait_until(lambda: delivered(stack, hit), what="delivery by the worker process")
    worker = wait_until(lambda: children(stack.proc.pid), what="the worker process")[0]
    assert "multiprocessing" in Path(f"/proc/{worker}/cmdline").read_text()  # the spawned worker, not a helper

    os.kill(worker, signal.SIGKILL)  # the child dies: the stack starts another
    replacement = wait_until(lambda: [c for c in children(stack.proc.pid) if c != worker and alive(c)],
                             timeout=30, what="a new worker process")[0]
    hit = post(stack, "wp-2")
    wait_until(lambda: delivered(stack, hit), timeout=90, what="delivery after the restart")

    os.kill(stack.proc.pid, signal.SIGKILL)  # the stack itself dies without a word
    wait_until(lambda: not alive(replacement), timeout=30, what="the orphaned worker process to leave")
