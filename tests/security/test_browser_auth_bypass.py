"""Item 1 of issue 14: a server-to-server endpoint needs the key on every request. Browser-ness
comes from the path (server.browser_paths), never from Origin / Sec-Fetch-* headers a client sets,
and an empty Origin does not pass the CORS allow-list."""

from __future__ import annotations

import json

import pytest

from tests.e2e.stack import LocalStack
from tests.security.raw import send

KEY = "tp_live_0123456789abcdef"
FORGED = json.dumps({"event_name": "purchase", "event_id": "forged-1", "value": 999, "currency": "EUR"}).encode()
CONFIG = """
[server]
api_keys_env = "TAGPIPE_API_KEYS"
cors_origins = ["https://shop.example"]

[destinations.dry_run]
type = "log"
"""
ATTACKS = {
    "empty origin": [("Origin", "")],
    "allowed origin": [("Origin", "https://shop.example")],
    "other origin": [("Origin", "https://evil.example")],
    "sec-fetch-mode": [("Sec-Fetch-Mode", "cors")],
    "sec-fetch-site": [("Sec-Fetch-Mode", "no-cors"), ("Sec-Fetch-Site", "same-origin")],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("s"), CONFIG, {"TAGPIPE_API_KEYS": KEY}) as s:
        yield s


@pytest.mark.parametrize("attack", ATTACKS)
def test_browser_headers_do_not_skip_the_key(stack, attack):
    r = send(stack.port, "POST", "/events", [("Content-Type", "application/json"), *ATTACKS[attack]], FORGED)
    assert r.status in (401, 403), (attack, r.status, r.body)
    assert r.json()["error"] in ("unauthorized", "origin_not_allowed")
    delivered = stack.store.query("SELECT 1 FROM outcomes WHERE outcome = 'delivered'")
    assert delivered == []


def test_the_key_still_works_and_the_browser_endpoint_needs_none(stack):
    ok = send(stack.port, "POST", "/events", [("Content-Type", "application/json"), ("X-Api-Key", KEY)], FORGED)
    assert ok.status == 200, ok.body
    gtag = send(stack.port, "GET", "/g/collect?v=2&tid=G-X&cid=1.2&en=page_view", [("Origin", "https://shop.example")])
    assert gtag.status == 204


def test_an_empty_origin_does_not_pass_the_allow_list(stack):
    r = send(stack.port, "GET", "/g/collect?v=2&tid=G-X&cid=1.2&en=page_view", [("Origin", "")])
    assert r.status == 403 and r.json()["error"] == "origin_not_allowed"
    assert not r.header("access-control-allow-origin")
