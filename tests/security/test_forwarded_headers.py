"""Items 2 and 8 of issue 14: X-Forwarded-For / X-Forwarded-Host are the client's to write.

By default collect trusts neither: the rate limit and the IP sent to Meta are the socket's peer.
With server.trusted_proxies = N the client is the N-th entry from the right (what the outermost of
our own proxies appended); entries to its left are whatever the client wrote. X-Forwarded-Host is
read only with server.forwarded_host, and only a host name ever reaches a cookie's Domain.
"""

from __future__ import annotations

import json
import random

import pytest

from tagpipe.config import ServerConfig
from tagpipe.pipeline.collect import forwarded_client
from tests.e2e.stack import LocalStack, wait_until
from tests.fakes.vendors import FakeVendors
from tests.security.raw import send

PIXEL = "1234567890"
BURST = 5


def _random_ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def _config(fakes: FakeVendors, server: str) -> str:
    return f"""
[server]
rate_limit_per_ip = 0.01
rate_limit_burst = {BURST}
{server}

[destinations.meta]
type = "meta"
pixel_id = "{PIXEL}"
endpoint = "{fakes.url}"
"""


def _token(fakes: FakeVendors) -> dict[str, str]:
    return {"META_ACCESS_TOKEN": fakes.meta_token}


def _purchase(i: int) -> bytes:
    return json.dumps({"event_name": "purchase", "event_id": f"xff-{i}", "value": 1, "currency": "EUR",
                       "action_source": "website", "page_location": "https://shop.example/"}).encode()


def _flood(port: int, n: int, forwarded_for) -> list[int]:
    rng = random.Random(7)
    return [send(port, "POST", "/events", [("Content-Type", "application/json"),
                                           ("X-Forwarded-For", forwarded_for(rng))], _purchase(i)).status
            for i in range(n)]


@pytest.mark.parametrize(("header", "proxies", "client"), [
    ("6.6.6.6", 0, None),
    ("6.6.6.6, 203.0.113.7", 1, "203.0.113.7"),
    ("6.6.6.6, 203.0.113.7, 35.191.0.1", 2, "203.0.113.7"),
    ("203.0.113.7", 2, None),  # fewer entries than proxies: it did not come through them
    ("6.6.6.6, not-an-ip", 1, None),
    ("6.6.6.6, 2001:DB8::1", 1, "2001:db8::1"),
    ("", 1, None),
])
def test_the_client_is_the_entry_our_outermost_proxy_appended(header, proxies, client):
    assert forwarded_client(header, proxies) == client


def test_trusted_proxies_default_to_the_platform(monkeypatch):
    monkeypatch.delenv("K_SERVICE", raising=False)
    assert ServerConfig().trusted_proxies == 0
    monkeypatch.setenv("K_SERVICE", "collect")  # Cloud Run / Cloud Functions gen2 set it themselves
    assert ServerConfig().trusted_proxies == 1
    assert ServerConfig(trusted_proxies=0).trusted_proxies == 0
    monkeypatch.delenv("K_SERVICE")
    with pytest.raises(ValueError, match="forwarded_host needs trusted_proxies"):
        ServerConfig(forwarded_host=True)


def test_random_forwarded_for_does_not_escape_the_rate_limit_nor_reach_meta(tmp_path):
    with FakeVendors() as fakes, LocalStack(tmp_path, _config(fakes, ""), _token(fakes)) as stack:
        statuses = _flood(stack.port, 30, _random_ip)
        assert statuses.count(200) == BURST and statuses.count(429) == 30 - BURST, statuses
        wait_until(lambda: len(fakes.meta.events) >= BURST, what="the admitted purchases at Meta")
        # none of the forged addresses; the real peer (loopback) is private, so no address at all
        assert {e["user_data"].get("client_ip_address") for e in fakes.meta.events} == {None}


def test_behind_one_proxy_the_rightmost_entry_is_the_client(tmp_path):
    server = "trusted_proxies = 1"
    with FakeVendors() as fakes, LocalStack(tmp_path, _config(fakes, server), _token(fakes)) as stack:
        # the client rotates what it writes; the proxy's own entry (the rightmost) stays the same
        statuses = _flood(stack.port, 20, lambda rng: f"{_random_ip(rng)}, 203.0.113.7")
        assert statuses.count(200) == BURST and statuses.count(429) == 20 - BURST, statuses
        wait_until(lambda: len(fakes.meta.events) >= BURST, what="the admitted purchases at Meta")
        assert {e["user_data"].get("client_ip_address") for e in fakes.meta.events} == {"203.0.113.7"}


COOKIE_CONFIG = """
[server]
trusted_proxies = 1
forwarded_host = {forwarded_host}

[destinations.dry_run]
type = "log"
"""
GTAG_HIT = "/g/collect?v=2&tid=G-X&cid=1.2&en=page_view&gcs=G111&dl=https%3A%2F%2Fwww.shop.example%2F"


@pytest.fixture(scope="module")
def cookie_stacks(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("on"), COOKIE_CONFIG.format(forwarded_host="true")) as on, \
            LocalStack(tmp_path_factory.mktemp("off"), COOKIE_CONFIG.format(forwarded_host="false")) as off:
        yield {"on": on, "off": off}


def _domains(response) -> set[str]:
    return {attr.strip().split("=", 1)[1].lower() for cookie in response.header("set-cookie")
            for attr in cookie.split(";")[1:] if attr.strip().lower().startswith("domain=")}


@pytest.mark.parametrize("forged", [
    "e.example; Domain=evil.example",
    "e.example;Domain=evil.example",
    "shop.example, evil example",
    "evil.example\t;x",
    "-bad-.example",
])
def test_a_forwarded_host_that_is_not_a_host_name_never_reaches_a_cookie(cookie_stacks, forged):
    r = send(cookie_stacks["on"].port, "GET", GTAG_HIT, [("X-Forwarded-Host", forged)])
    assert r.status == 204
    assert r.header("set-cookie"), "the hit still gets its identity cookies (host-only)"
    assert not any("evil" in c.lower() for c in r.header("set-cookie")), r.header("set-cookie")
    assert _domains(r) <= {"shop.example"}


def test_the_proxy_host_is_the_rightmost_entry_and_read_only_when_configured(cookie_stacks):
    on = send(cookie_stacks["on"].port, "GET", GTAG_HIT, [("X-Forwarded-Host", "evil.example, www.shop.example")])
    assert _domains(on) == {"shop.example"}
    off = send(cookie_stacks["off"].port, "GET", GTAG_HIT, [("X-Forwarded-Host", "www.shop.example")])
    assert _domains(off) == set()  # Host is 127.0.0.1: host-only cookies

