"""Real hits into the real local stack, out to a fake Meta CAPI that checks the protocol like Meta."""

from __future__ import annotations

import hashlib
import signal
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.stack import LocalStack, wait_until
from tests.fakes.vendors import FakeVendors

PIXEL = "123456789012345"


def meta_config(endpoint: str, extra: str = "") -> str:
    return f"""
[delivery]
min_backoff = 0.05
max_backoff = 0.2
linger_ms = 20

[destinations.meta]
type = "meta"
pixel_id = "{PIXEL}"
endpoint = "{endpoint}"
access_token_env = "META_ACCESS_TOKEN"
{extra}
"""


@pytest.fixture
def fakes():
    with FakeVendors() as f:
        yield f


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def test_gtag_and_json_events_reach_meta_hashed_and_deduplicable(tmp_path, fakes):
    env = {"META_ACCESS_TOKEN": fakes.meta_token}
    with LocalStack(tmp_path / "s", meta_config(fakes.url), env) as stack:
        ua = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"}
        # a GA4 gtag purchase hit, as gtag.js sends it to a server_container_url
        dl = quote("https://shop.example/checkout/thanks?fbclid=IwAR0abcDEF", safe="")
        q = (f"v=2&tid=G-TEST123&cid=555.666&en=purchase&dl={dl}&ep.event_id=T-1001&ep.transaction_id=T-1001"
             "&epn.value=129.90&cu=EUR&pr1=idSKU-1~nmShirt~pr64.95~qt2")
        r = httpx.post(f"{stack.url}/g/collect?{q}", headers={**ua, "cookie": "_fbp=fb.1.1700000000000.123456789"})
        assert r.status_code == 204
        # a JSON API lead with customer data
        r = httpx.post(f"{stack.url}/events", headers=ua, json={
            "event_name": "generate_lead", "event_id": "lead-7", "page_location": "https://shop.example/contact",
            "user_data": {"email": " Jane.Doe@Example.com ", "phone": "+1 (650) 555-1234"},
        })
        assert r.status_code == 200, r.text

        wait_until(lambda: fakes.meta.count >= 2, what="two events at the fake Meta")
        events = {e["event_id"]: e for e in fakes.meta.events}
        purchase, lead = events["T-1001"], events["lead-7"]
        assert purchase["event_name"] == "Purchase" and lead["event_name"] == "Lead"
        assert purchase["action_source"] == "website"
        assert purchase["custom_data"]["value"] == pytest.approx(129.90)
        assert purchase["custom_data"]["currency"].lower() == "eur"
        assert purchase["custom_data"]["contents"][0]["id"] == "SKU-1"
        # not hashed; collect tagged the 4-segment cookie with Meta's parameter builder's appendix
        assert purchase["user_data"]["fbp"].startswith("fb.1.1700000000000.123456789.")
        assert purchase["user_data"]["fbc"].split(".")[3] == "IwAR0abcDEF"  # fbclid kept byte for byte
        assert lead["user_data"]["em"] == [sha("jane.doe@example.com")]
        assert lead["user_data"]["ph"] == [sha("16505551234")]
        assert isinstance(purchase["event_time"], int) and purchase["event_time"] < 10**11  # seconds
        assert not fakes.meta.refused

        outcomes = wait_until(lambda: [o for o in stack.outcomes() if o[2] == "meta"] if len(
            [o for o in stack.outcomes() if o[2] == "meta"]) >= 2 else None, what="meta outcomes")
        assert sorted(o[3] for o in outcomes) == ["delivered", "delivered"]
        # the same event_id again (browser resend): filtered as a duplicate, never sent twice
        r = httpx.post(f"{stack.url}/events", headers=ua, json={
            "event_name": "generate_lead", "event_id": "lead-7", "page_location": "https://shop.example/contact"})
        wait_until(lambda: any(o[3:] == ("filtered", "duplicate") for o in stack.outcomes()), what="duplicate outcome")
        assert fakes.meta.duplicates() == {}
        # no raw PII in the stack's logs
        logs = stack.logs()
        assert "jane.doe" not in logs.lower() and "555-1234" not in logs and "5551234" not in logs


def test_expired_token_dead_letters_with_a_reason(tmp_path, fakes):
    fakes.meta.expect_refusal("token")
    env = {"META_ACCESS_TOKEN": "wrong-token"}
    with LocalStack(tmp_path / "s", meta_config(fakes.url), env) as stack:
        r = httpx.post(f"{stack.url}/events", headers={"user-agent": "Mozilla/5.0 Chrome/131.0"}, json={
            "event_name": "purchase", "event_id": "o-1", "value": 5, "currency": "USD",
            "page_location": "https://shop.example/"})
        assert r.status_code == 200
        rows = wait_until(lambda: [o for o in stack.outcomes() if o[2] == "meta"], what="meta outcome")
        assert rows[0][3] == "dead_lettered" and rows[0][4] == "meta:190"
        wait_until(lambda: stack.store.query("SELECT error_code FROM failed_events WHERE stage='deliver'"),
                   what="the dead letter archived for replay")
        assert fakes.meta.count == 0


def test_restart_mid_stream_delivers_every_event_once(tmp_path, fakes):
    env = {"META_ACCESS_TOKEN": fakes.meta_token}
    n = 300
    ua = {"user-agent": "Mozilla/5.0 Chrome/131.0"}
    stack = LocalStack(tmp_path / "s", meta_config(fakes.url), env).start()
    try:
        fakes.meta.slow_next(3, seconds=0.3)  # keep deliveries in flight when we stop
        with httpx.Client(base_url=stack.url, headers=ua) as client:
            for i in range(n):
                r = client.post("/events", json={"event_name": "add_to_cart", "event_id": f"e-{i}",
                                                 "page_location": "https://shop.example/p"})
                assert r.status_code == 200
                if i == n // 2:
                    assert stack.stop(signal.SIGINT) == 0  # Ctrl-C mid-stream
                    stack.start()
                    client.base_url = stack.url
        wait_until(lambda: fakes.meta.count >= n, timeout=60, what=f"{n} events at the fake Meta")
        wait_until(lambda: len([o for o in stack.outcomes() if o[2] == "meta"]) >= n, what="all outcomes")
    finally:
        stack.stop()
    assert sorted(fakes.meta.event_ids()) == sorted(f"e-{i}" for i in range(n))
    assert fakes.meta.duplicates() == {}
    outcomes = [o for o in stack.outcomes() if o[2] == "meta"]
    assert len(outcomes) == n and {o[3] for o in outcomes} == {"delivered"}
