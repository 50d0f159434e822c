"""Stores full of monitoring data: synthetic outcomes at chosen times, and real traced hits.

`fill_history` writes outcomes and hits with explicit timestamps (the alert rules and the
dashboard read windows relative to an injected clock). `traced_pipeline` sends real hits with a
debug token through collect -> transform -> deliver to a fake Meta (tests.fakes.vendors), so the
debug view reads what the pipeline really records.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from tagpipe.models import HIT_LEVEL, Outcome, OutcomeKind, RawHit
from tagpipe.storage.sqlite import SqliteStore

# the customer data the browser tests make sure never reaches the page
PII_EMAIL = "jane.doe.private@example.com"
PII_PHONE = "+1 (650) 555-0199"
PII_PHONE_DIGITS = "16505550199"
PIXEL = "123456789012345"


def outcome(dest: str, kind: str, at: float, reason: str = "ok", *, event: str = "purchase", hit: str | None = None,
            identifiers: Iterable[str] = (), detail: str = "", n: int = 0) -> Outcome:
    hit = hit or f"h{random.getrandbits(64):016x}"
    return Outcome(hit_id=hit, event_uid=f"{hit}:0" if dest != HIT_LEVEL else HIT_LEVEL, destination=dest,
                   outcome=OutcomeKind(kind), reason=reason, detail=detail, event_name=event,
                   identifiers=list(identifiers), at=at)


def add(store: SqliteStore, dest: str, kind: str, at: float, count: int, reason: str = "ok", **kw: Any) -> None:
    """`count` outcomes for `dest` at time `at` (each its own hit and event)."""
    store.record_outcomes([outcome(dest, kind, at, reason, **kw) for _ in range(count)])


def add_hits(store: SqliteStore, at: float, count: int) -> None:
    store.record_hits([RawHit(source="json", received_at=at, body="{}") for _ in range(count)])


def fill_history(store: SqliteStore, now: float, *, days: int = 7, per_hour: int = 60,
                 dests: tuple[str, ...] = ("meta", "ga4")) -> None:
    """A healthy week before the last hour: per hour, `per_hour` hits and per destination delivered events,
    ~1% failed (meta: a few http:503 dead letters), consent and duplicate filtering, match keys."""
    rng = random.Random(7)
    outcomes: list[Outcome] = []
    hits: list[RawHit] = []
    for h in range(1, days * 24 + 1):
        at = now - h * 3600  # the hour before it: [at - 3600, at)
        hits += [RawHit(source="json", received_at=at - 1 - rng.random() * 3500, body="{}") for _ in range(per_hour)]
        for dest in dests:
            for i in range(per_hour):
                t = at - 1 - rng.random() * 3500
                if i == 0 and h % 2 == 0:
                    outcomes.append(outcome(dest, "dead_lettered", t, "http:503", detail="Meta service temporarily unavailable"))
                elif i < 5:
                    outcomes.append(outcome(dest, "filtered", t, "consent", detail="consent not granted: ad_storage"))
                elif i < 7:
                    outcomes.append(outcome(dest, "filtered", t, "duplicate", detail="event_id already delivered"))
                else:
                    ids = ["em", "fbp"] + (["ph"] if i % 2 else []) + (["fbc"] if i % 4 == 0 else [])
                    outcomes.append(outcome(dest, "delivered", t, identifiers=ids if dest == "meta" else ["client_id"]))
    store.record_hits(hits)
    for start in range(0, len(outcomes), 5000):
        store.record_outcomes(outcomes[start:start + 5000])


def traced_pipeline(tmp_path, fakes, monkeypatch, hits: list[dict[str, Any]], *, break_meta: bool = False,
                    tagging: dict[str, Any] | None = None):
    """Run real hits through collect, transform, deliver (in-process, to FakeVendors' Meta) and the archive.

    Each hit dict: {"path": "/events", "json": {...}} or {"path": "/g/collect", "query": "...", "method": "GET"},
    with optional "headers". Returns the Runtime (its store holds the traces)."""
    import warnings

    from starlette.applications import Starlette
    from starlette.routing import Route

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's note about httpx vs httpx2
        from starlette.testclient import TestClient

    from tagpipe.config import Config
    from tagpipe.pipeline.archive import DeadLetterArchive
    from tagpipe.pipeline.collect import Collector
    from tagpipe.pipeline.deliver import Deliverer
    from tagpipe.pipeline.stage import settle
    from tagpipe.pipeline.transform import Transformer
    from tagpipe.runtime import Runtime, topology_for
    from tagpipe.transport.local import LocalBus

    monkeypatch.setenv("META_ACCESS_TOKEN", "wrong-token" if break_meta else fakes.meta_token)
    if break_meta:
        fakes.meta.expect_refusal("token")
    config = Config(storage={"dir": str(tmp_path / "data")},
                    delivery={"min_backoff": 0.01, "max_backoff": 0.01, "max_attempts": 1},
                    destinations={"meta": {"type": "meta", "pixel_id": PIXEL, "endpoint": fakes.url},
                                  "dry_run": {"type": "log"}}, **(tagging or {}))
    runtime = Runtime(config, LocalBus(config.storage.dir, topology_for(config)), SqliteStore(config.storage.dir))
    collector = Collector(runtime)

    async def handle(request):
        return await collector(request)

    app = Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST"])])
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for hit in hits:
            r = client.request(hit.get("method", "POST"), hit["path"] + (f"?{hit['query']}" if hit.get("query") else ""),
                               json=hit.get("json"), headers=hit.get("headers"))
            assert r.status_code in (200, 204, 400), r.text
    for stage in (Transformer(runtime), Deliverer(runtime), DeadLetterArchive(runtime)):
        for _ in range(5):
            messages = runtime.bus.pull(stage.subscription, 500, 0)
            if not messages:
                break
            settle(runtime.bus, stage.subscription, messages, stage.handle(messages))
    return runtime
