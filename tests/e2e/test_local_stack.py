"""The whole pipeline on one machine: the real `tagpipe run` process, real HTTP, real queue."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.stack import LocalStack, wait_until

DRY_RUN = """
[destinations.dry_run]
type = "log"
"""


@pytest.fixture
def stack(tmp_path):
    with LocalStack(tmp_path / "stack", DRY_RUN) as s:
        yield s


def test_json_event_flows_to_a_delivered_outcome(stack):
    r = httpx.post(f"{stack.url}/events", json={"event_name": "purchase", "event_id": "order-1", "value": 10,
                                               "currency": "EUR", "page_location": "https://shop.example/thanks"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] and body["event_ids"] == ["order-1"]
    rows = wait_until(lambda: [o for o in stack.outcomes() if o[0] == body["hit_id"]], what="an outcome")
    assert [(dest, outcome) for _, _, dest, outcome, _ in rows] == [("dry_run", "delivered")]


def test_gtag_get_hit_is_accepted_with_204(stack):
    q = "v=2&tid=G-TEST123&cid=111.222&en=page_view&dl=https%3A%2F%2Fshop.example%2F&dt=Home"
    # a browser's user agent: gtag hits from an HTTP library are bots (filtered, reason bot)
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36"
    r = httpx.get(f"{stack.url}/g/collect?{q}", headers={"user-agent": ua})
    assert r.status_code == 204
    wait_until(lambda: any(o[2] == "dry_run" and o[3] == "delivered" for o in stack.outcomes()), what="delivery")
    names = [row[0] for row in stack.store.query("SELECT name FROM events")]
    assert names == ["page_view"]


def test_bad_input_gets_json_reason_and_a_recorded_rejection(stack):
    r = httpx.post(f"{stack.url}/events", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()
    assert err["ok"] is False and err["error"] and err["reason"]
    failures = stack.store.query("SELECT stage, error_code FROM failed_events")
    assert failures == [("collect", err["error"])]
    assert [o[3:] for o in stack.outcomes()] == [("rejected", err["error"])]


def test_unknown_path_and_wrong_method(stack):
    assert httpx.get(f"{stack.url}/nope").status_code == 404  # not an endpoint: answered, not recorded
    r = httpx.get(f"{stack.url}/events")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert ("collect", "method_not_allowed") in stack.store.query("SELECT stage, error_code FROM failed_events")
