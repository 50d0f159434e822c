"""Item 6 of issue 14: replays. A signature covers method, path, query, timestamp and body and is
accepted once; an event without an event_id keeps the same generated id when its hit is retried or
replayed, so Meta gets one purchase however often the request is sent."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from tests.e2e.stack import LocalStack, wait_until
from tests.fakes.vendors import FakeVendors
from tests.security.raw import send

SECRET = "whsec_replay_0123456789"
KEY = "tp_live_replay_0123456789"
PURCHASE = json.dumps({"event_name": "purchase", "value": 999, "currency": "EUR", "action_source": "website",
                       "page_location": "https://shop.example/thanks", "client_id": "555.666"}).encode()


def signature(t: int, method: str, path: str, query: str, body: bytes, secret: str = SECRET, scheme: str = "v2") -> str:
    message = f"{t}\n{method}\n{path}\n{query}\n".encode() + body if scheme == "v2" else f"{t}.".encode() + body
    return f"t={t},{scheme}=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with FakeVendors() as fakes:
        config = f"""
[server]
hmac_secret_env = "TAGPIPE_HMAC_SECRET"
api_keys_env = "TAGPIPE_API_KEYS"

[destinations.meta]
type = "meta"
pixel_id = "1234567890"
endpoint = "{fakes.url}"
"""
        env = {"TAGPIPE_HMAC_SECRET": SECRET, "TAGPIPE_API_KEYS": KEY, "META_ACCESS_TOKEN": fakes.meta_token}
        with LocalStack(tmp_path_factory.mktemp("s"), config, env) as s:
            s.fakes = fakes
            yield s


def _post(stack, target: str, headers: list[tuple[str, str]], body: bytes = PURCHASE):
    return send(stack.port, "POST", target, [("Content-Type", "application/json"), *headers], body)


def test_a_signature_is_good_for_its_own_request_once(stack):
    t = int(time.time())
    good = signature(t, "POST", "/events", "", PURCHASE)
    assert _post(stack, "/events", [("X-Tagpipe-Signature", good)]).status == 200
    replay = _post(stack, "/events", [("X-Tagpipe-Signature", good)])
    assert replay.status == 401 and "already used" in replay.json()["reason"]
    # the same signature moved to another path, or a query added: it did not sign those
    moved = _post(stack, "/events?tp_debug=x", [("X-Tagpipe-Signature", signature(t + 1, "POST", "/events", "", PURCHASE))])
    assert moved.status == 401
    elsewhere = signature(t + 2, "POST", "/events", "", PURCHASE)
    assert _post(stack, "/mp/collect?measurement_id=G-X", [("X-Tagpipe-Signature", elsewhere)]).status == 401


def test_a_body_only_v1_signature_is_refused_with_the_reason(stack):
    old = signature(int(time.time()), "POST", "/events", "", PURCHASE, scheme="v1")
    r = _post(stack, "/events", [("X-Tagpipe-Signature", old)])
    assert r.status == 401 and "v2=" in r.json()["reason"]


def test_a_replayed_purchase_without_event_id_reaches_meta_once(stack):
    body = PURCHASE.replace(b'"value": 999', b'"value": 998')
    answers = [_post(stack, "/events", [("X-Api-Key", KEY)], body) for _ in range(3)]  # a retry, two replays
    assert [a.status for a in answers] == [200, 200, 200]
    ids = {tuple(a.json()["event_ids"]) for a in answers}
    assert len(ids) == 1  # the same generated id each time, as collect answered it
    (event_id,) = ids.pop()
    def settled():
        rows = stack.store.query("SELECT o.outcome, o.reason FROM outcomes o JOIN events e ON o.event_uid = e.event_uid"
                                 " WHERE o.destination = 'meta' AND e.event_id = ?", (event_id,))
        return rows if len(rows) == 3 else None

    rows = wait_until(settled, what="an outcome for each of the three hits")
    assert sorted(rows) == [("delivered", "ok"), ("filtered", "duplicate"), ("filtered", "duplicate")]
    assert stack.fakes.meta.event_ids().count(event_id) == 1  # Meta got one purchase
