from __future__ import annotations

import socket

import pytest

from tagpipe.storage.sqlite import SqliteStore

NOW = 1_800_000_000.0  # a fixed "now" for the injectable clock (2027-01-15)


class Clock:
    """The evaluator's clock: tests move it instead of sleeping."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, minutes: float = 0, seconds: float = 0) -> float:
        self.t += minutes * 60 + seconds
        return self.t


class Recorder:
    """A notifier that keeps what it is sent."""

    def __init__(self, name: str = "recorder", fail_times: int = 0) -> None:
        self.name = name
        self.sent = []
        self.fail_times = fail_times

    def send(self, alert) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError(f"{self.name} is down")
        self.sent.append(alert)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "data")
    yield s
    s.close()
