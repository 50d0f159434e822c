"""Nobody gets in: API keys and HMAC for server-to-server calls, CORS allow-list for browsers,
per-IP rate limit, and no secret or PII in any log line of a full run."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest
from starlette.testclient import TestClient

from tagpipe.auth import RateLimiter
from tagpipe.config import load_config
from tagpipe.ops.local import collect_app
from tagpipe.runtime import build_runtime, set_runtime
from tests.e2e.stack import LocalStack, wait_until
from tests.e2e.test_meta_end_to_end import PIXEL
from tests.fakes.vendors import FakeVendors

KEY = "tp_live_0123456789abcdef"
HMAC_SECRET = "whsec_fedcba9876543210"
EVENT = {"event_name": "purchase", "event_id": "s-1", "value": 1, "currency": "EUR",
         "page_location": "https://shop.example/"}
GTAG_HIT = "/g/collect?v=2&tid=G-X&cid=1.2&en=page_view"


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGPIPE_API_KEYS", f"old-key-123,{KEY}")
    monkeypatch.setenv("TAGPIPE_HMAC_SECRET", HMAC_SECRET)
    cfg = tmp_path / "tagpipe.toml"
    cfg.write_text(f"""
[storage]
dir = "{tmp_path / 'data'}"

[server]
api_keys_env = "TAGPIPE_API_KEYS"
hmac_secret_env = "TAGPIPE_HMAC_SECRET"
cors_origins = ["https://shop.example"]
rate_limit_per_ip = 0.001
rate_limit_burst = 40

[destinations.dry_run]
type = "log"
""")
    rt = build_runtime(load_config(cfg))
    set_runtime(rt)
    with TestClient(collect_app()) as c:
        c.rt = rt
        yield c
    set_runtime(None)
    rt.close()


def rejections(client) -> list[str]:
    return [r[0] for r in client.rt.store.query("SELECT reason FROM outcomes WHERE outcome = 'rejected'")]


def test_server_call_without_key_is_refused_and_recorded(client):
    r = client.post("/events", json=EVENT)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert rejections(client) == ["unauthorized"]


@pytest.mark.parametrize("headers", [{"authorization": f"Bearer {KEY}"}, {"x-api-key": KEY},
                                     {"authorization": "Bearer old-key-123"}])
def test_server_call_with_a_key_passes(client, headers):
    assert client.post("/events", json=EVENT, headers=headers).status_code == 200


def test_wrong_key_is_refused(client):
    assert client.post("/events", json=EVENT, headers={"x-api-key": KEY + "x"}).status_code == 401


def test_mp_uses_its_api_secret_as_the_key(client):
    body = {"client_id": "1.2", "events": [{"name": "purchase"}]}
    assert client.post("/mp/collect?measurement_id=G-X&api_secret=nope", json=body).status_code == 401
    assert client.post(f"/mp/collect?measurement_id=G-X&api_secret={KEY}", json=body).status_code == 204


def sign(body: bytes, t: int, secret: str = HMAC_SECRET, method: str = "POST", path: str = "/events",
         query: str = "") -> str:
    """docs/destinations.md's recipe, written out here: t, method, path, query and body, newline-separated."""
    message = f"{t}\n{method}\n{path}\n{query}\n".encode() + body
    return f"t={t},v2=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_hmac_signature(client):
    body = json.dumps(EVENT).encode()
    now = int(time.time())
    ok = client.post("/events", content=body, headers={"x-tagpipe-signature": sign(body, now)})
    assert ok.status_code == 200
    for signature in (sign(body, now, "wrong"), sign(body, now - 3600), sign(body + b" ", now), "t=x,v2=00",
                      sign(body, now, path="/mp/collect")):
        r = client.post("/events", content=body, headers={"x-tagpipe-signature": signature})
        assert r.status_code == 401, signature


def test_browsers_are_held_to_the_origin_allow_list(client):
    # with a key configured, /events is server-to-server (server.browser_paths): the browser endpoint is gtag's
    ok = client.get(GTAG_HIT, headers={"origin": "https://shop.example"})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == "https://shop.example"
    bad = client.get(GTAG_HIT, headers={"origin": "https://evil.example"})
    assert bad.status_code == 403 and bad.json()["error"] == "origin_not_allowed"
    # the refusal is readable by that page, so a tag there stops instead of retrying a "network error"
    assert bad.headers["access-control-allow-origin"] == "https://evil.example"
    assert "origin_not_allowed" in rejections(client)  # recorded, like every refused hit
    pre = client.options("/events", headers={"origin": "https://evil.example", "access-control-request-method": "POST"})
    assert pre.status_code == 403


def test_rate_limit_per_ip(client):
    codes = [client.post("/events", json=EVENT, headers={"x-api-key": KEY}).status_code for _ in range(45)]
    assert codes[:40] == [200] * 40  # the burst
    assert set(codes[40:]) == {429}
    r = client.post("/events", json=EVENT, headers={"x-api-key": KEY})
    assert r.json()["error"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    assert "rate_limited" in rejections(client)


def test_a_flood_is_recorded_in_summaries_not_one_record_per_request(client, caplog):
    from tagpipe.pipeline import collect

    now = [0.0]
    for _ in range(40):  # the burst
        assert client.post("/events", json=EVENT, headers={"x-api-key": KEY}).status_code == 200
    tally = collect._collector.throttled = collect.ThrottledTally(window=10, individually=5, clock=lambda: now[0])
    caplog.set_level("INFO", logger="tagpipe.outcomes")
    codes = [client.post("/events", json=EVENT, headers={"x-api-key": KEY}).status_code for _ in range(300)]
    assert set(codes) == {429}
    assert rejections(client) == ["rate_limited"] * 5  # the first ones of the flood, one by one
    now[0] = 10.0  # the window is over: the next request that reaches the limiter records the rest as one
    assert client.post("/events", json=EVENT, headers={"x-api-key": KEY}).status_code == 429
    assert tally.counts == {} and tally.recorded == 1  # that request opened the next window
    assert rejections(client) == ["rate_limited"] * 7
    details = [r[0] for r in client.rt.store.query("SELECT detail FROM outcomes WHERE reason = 'rate_limited'")]
    assert sum("295 more requests to /events" in d for d in details) == 1
    logged = [r.count for r in caplog.records if r.getMessage() == "outcome_counts" and r.reason == "rate_limited"]
    assert sum(logged) == 301  # the log metric still counts every refused request


def test_rate_limiter_refills_and_stays_bounded():
    rl = RateLimiter(rate=10, burst=2, max_ips=3)
    assert rl.allow("a", now=0) == 0 and rl.allow("a", now=0) == 0
    assert rl.allow("a", now=0) == pytest.approx(0.1)
    assert rl.allow("a", now=0.2) == 0  # refilled
    for ip in "bcde":
        rl.allow(ip, now=1)
    assert len(rl.buckets) == 3 and "a" not in rl.buckets


TEST_EMAIL = "secret.shopper@example.org"
TEST_PHONE = "+44 7700 900123"
TEST_IP = "198.51.100.77"


def test_no_pii_and_no_secret_in_the_logs_of_a_full_run(tmp_path):
    with FakeVendors() as fakes:
        fakes.meta.expect_refusal("token")  # the broken destination's token
        config = f"""
[server]
trusted_proxies = 1  # so the client IP below is the one collect uses and sends on

[delivery]
max_attempts = 2
min_backoff = 0.05
max_backoff = 0.1

[destinations.meta]
type = "meta"
pixel_id = "{PIXEL}"
endpoint = "{fakes.url}"

[destinations.broken]
type = "meta"
pixel_id = "{PIXEL}"
endpoint = "{fakes.url}"
access_token_env = "BROKEN_TOKEN"

[destinations.hook]
type = "webhook"
endpoint = "{fakes.url}/webhook/x"
secret_env = "WEBHOOK_SECRET"
consent = []
"""
        env = {"META_ACCESS_TOKEN": fakes.meta_token, "BROKEN_TOKEN": "EAAGbroken-token-value",
               "WEBHOOK_SECRET": fakes.webhook_secret, "TAGPIPE_LOG_LEVEL": "DEBUG"}
        fakes.webhook.fail_next(2, status=500)
        with LocalStack(tmp_path / "s", config, env) as stack:
            headers = {"user-agent": "Mozilla/5.0 Chrome/131.0", "x-forwarded-for": TEST_IP}
            for i in range(5):
                r = httpx.post(f"{stack.url}/events", headers=headers, json={
                    **EVENT, "event_id": f"pii-{i}",
                    "user_data": {"email": TEST_EMAIL, "phone": TEST_PHONE, "first_name": "Zoë", "city": "Leeds"}})
                assert r.status_code == 200
            # bad input that echoes PII back would be a leak too
            httpx.post(f"{stack.url}/events", headers=headers, content=f'{{"event_name": "x", "email": "{TEST_EMAIL}"'.encode())
            wait_until(lambda: len(stack.store.query("SELECT 1 FROM outcomes WHERE destination != '*'")) >= 15,
                       timeout=60, what="all outcomes")
        logs = stack.logs()
    assert "dead_lettered" in logs or "permanent" in logs  # the broken destination did log its failure
    digits = TEST_PHONE.replace(" ", "").replace("+", "")
    for needle in (TEST_EMAIL, TEST_EMAIL.split("@")[0], digits, TEST_PHONE, TEST_IP,
                   fakes.meta_token, "EAAGbroken-token-value", fakes.webhook_secret, "Zoë"):
        assert needle not in logs, f"{needle!r} appears in the logs"
