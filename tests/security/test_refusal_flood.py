"""Item 5 of issue 14: a flood of refused requests of any class (400, 401, 403, 405, 413, 429) cannot
turn into a flood of rows and log lines. The first refusals of a window get a record each, the rest
one summary per (source, path, reason) that still counts every request."""

from __future__ import annotations

import json

from tagpipe.auth import RateLimiter
from tagpipe.pipeline import collect
from tests.e2e.stack import LocalStack
from tests.reliability.test_security import KEY, client, rejections  # noqa: F401  (client: the fixture)
from tests.security.raw import send

JUNK = {
    "invalid_json": ("POST", "/events", [("Content-Type", "application/json"), ("X-Api-Key", KEY)], b'{"event_name": '),
    "unauthorized": ("POST", "/events", [("Content-Type", "application/json")], b'{"event_name": "purchase"}'),
    "method_not_allowed": ("DELETE", "/events", [("X-Api-Key", KEY)], b""),
    "origin_not_allowed": ("GET", "/g/collect?v=2&tid=G-X&cid=1.2&en=page_view", [("Origin", "https://evil.example")], b""),
}


def test_every_refusal_class_is_summarised_and_every_request_still_counted(client, caplog):  # noqa: F811
    now = [0.0]
    collect.collector().throttled = collect.ThrottledTally(window=10, individually=4, clock=lambda: now[0])
    collect.collector().limiter = RateLimiter(rate=0, burst=1)  # off: this flood is of the other classes
    caplog.set_level("INFO", logger="tagpipe.outcomes")
    sent = 0
    for _ in range(50):
        for method, path, headers, body in JUNK.values():
            r = client.request(method, path, headers=dict(headers), content=body)
            assert r.status_code in (400, 401, 403, 405) and r.json()["error"] in JUNK
            sent += 1
    assert len(rejections(client)) == 4  # the first of the window, one by one
    assert len(client.rt.store.query("SELECT 1 FROM failed_events")) == 4
    now[0] = 10.0
    client.post("/events", content=b"{", headers={"x-api-key": KEY, "content-type": "application/json"})
    sent += 1
    reasons = rejections(client)
    assert sorted(set(reasons)) == sorted(JUNK) and len(reasons) == 4 + len(JUNK) + 1  # a summary per class
    logged = sum(r.count for r in caplog.records if r.getMessage() == "outcome_counts" and r.outcome == "rejected")
    assert logged == sent  # the log metric counts every refused request, as the summaries' weight


def test_a_junk_flood_at_a_running_collect_writes_a_bounded_number_of_rows(tmp_path):
    config = """
[server]
api_keys_env = "TAGPIPE_API_KEYS"
cors_origins = ["https://shop.example"]
max_body_bytes = 1000

[destinations.dry_run]
type = "log"
"""
    big = json.dumps({"event_name": "x", "pad": "a" * 2000}).encode()
    flood = [*JUNK.values(), ("POST", "/events", [("Content-Type", "application/json"), ("X-Api-Key", KEY)], big)]
    with LocalStack(tmp_path, config, {"TAGPIPE_API_KEYS": KEY}) as stack:
        statuses = [send(stack.port, *request).status for _ in range(60) for request in flood]
        assert set(statuses) == {400, 401, 403, 405, 413}
        failed = stack.store.query("SELECT COUNT(*) FROM failed_events")[0][0]
        rejected = stack.store.query("SELECT COUNT(*) FROM outcomes WHERE outcome = 'rejected'")[0][0]
    # 300 refused requests: the first 20 of each 10 s window one by one, then a summary per class
    assert failed == rejected and failed <= 20 + 3 * len(flood), (failed, len(statuses))
