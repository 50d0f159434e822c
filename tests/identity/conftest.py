"""A Collector on a real local queue and store, behind Starlette's test client (no sockets)."""

from __future__ import annotations

import warnings

import pytest

from tagpipe.config import Config, StorageConfig
from tagpipe.models import RawHit
from tagpipe.pipeline.collect import Collector
from tagpipe.runtime import Runtime
from tagpipe.storage.sqlite import SqliteStore
from tagpipe.transport.local import LocalBus

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/140.0.0.0 Safari/537.36")  # fmt: skip
BROWSER = {"user-agent": CHROME, "origin": "https://shop.example.co.uk", "host": "collect.shop.example.co.uk",
           "content-type": "text/plain;charset=UTF-8"}  # fmt: skip


class CollectClient:
    def __init__(self, tmp_path) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Route

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient

        config = Config(storage=StorageConfig(dir=str(tmp_path)), destinations={"dry_run": {"type": "log"}})
        self.runtime = Runtime(config, LocalBus(tmp_path), SqliteStore(tmp_path))
        self.collector = Collector(self.runtime)
        app = Starlette(routes=[Route("/{path:path}", self.collector.__call__, methods=["GET", "POST", "OPTIONS", "HEAD"])])
        self.http = TestClient(app, base_url="https://collect.shop.example.co.uk")

    def post_json(self, body: str, headers: dict | None = None, cookies: dict | None = None):
        h = {**BROWSER, **(headers or {})}
        if cookies:
            h["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self.http.cookies.clear()
        return self.http.post("/events", content=body.encode(), headers=h)

    def published(self) -> list[RawHit]:
        msgs = self.runtime.bus.pull("transform", 100)
        self.runtime.bus.ack("transform", [m.ack_id for m in msgs])
        return [RawHit.model_validate_json(m.data) for m in msgs]

    def close(self) -> None:
        self.http.close()
        self.runtime.close()


@pytest.fixture
def collect(tmp_path):
    c = CollectClient(tmp_path)
    yield c
    c.close()


def set_cookies(response) -> dict[str, str]:
    """name -> the whole Set-Cookie header."""
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}
