"""The client address vendors get: public IPv6 over IPv4, never a private one, as Meta's parameter
builder picks it (nodejs ParamBuilder.js _getClientIp, the oracle below), from the `_fbi` cookie and the
request; and what a client can and cannot choose through X-Forwarded-For."""

from __future__ import annotations

import json
import subprocess

import pytest

from tagpipe.models import RawHit
from tagpipe.parsing._common import HitContext, best_client_ip, fbi_cookie_ip
from tests.tools import node_module

V6 = "2a03:2880:f12f:83:face:b00c:0:25de"
V4 = "157.240.22.35"
CASES = [
    # (_fbi cookie or None, the request's address)
    (None, V4),
    (None, V6),
    (None, "10.0.0.7"),
    (None, "192.168.1.20"),
    (None, "172.20.3.4"),
    (None, "127.0.0.1"),
    (None, "::1"),
    (None, "fe80::1"),
    (None, "fd12:3456::1"),
    (f"{V6}.AQICAQMC", V4),  # the client-side builder's cookie with its IPv6: preferred
    (f"{V6}.Ag", "10.0.0.7"),
    (f"{V4}.AQICAQMC", V6),  # an IPv4 in the cookie loses to the request's public IPv6
    (f"{V4}.Ag", "157.240.22.36"),  # both IPv4: the cookie's first
    ("10.1.1.1.AQICAQMC", V4),  # a private cookie address never wins
    ("fd00::5.Ag", "127.0.0.1"),  # nothing public at all
    ("not-an-ip.Ag", V4),
]


def ours(cookie: str | None, request_ip: str) -> str | None:
    return best_client_ip(fbi_cookie_ip(cookie), request_ip)


@pytest.mark.parametrize("cookie, request_ip", CASES)
def test_the_hit_context_picks_the_address_as_collect_would(cookie, request_ip):
    raw = RawHit(source="json", client_ip=request_ip, cookies={"_fbi": cookie} if cookie else {})
    assert HitContext(raw).ip == ours(cookie, request_ip)


def test_ipv6_over_ipv4_and_no_private_address():
    assert ours(f"{V6}.Ag", V4) == V6
    assert ours(None, "10.0.0.7") is None
    assert ours(None, "::ffff:157.240.22.35") == V4  # an IPv4-mapped IPv6 is the IPv4 it carries
    assert best_client_ip("2A03:2880:F12F:0083:FACE:B00C:0000:25DE") == V6  # compressed, lower case


ORACLE = r"""
const { ParamBuilder } = require(process.argv[1]);
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = cases.map(([cookie, ip]) => {
  const pb = new ParamBuilder(['example.com']);
  pb.processRequest('www.example.com', {}, cookie ? { _fbi: cookie } : {}, null, null, ip);
  const best = pb.getClientIpAddress();
  return best === null ? null : best.slice(0, best.lastIndexOf('.'));  // without its appendix
});
process.stdout.write(JSON.stringify(out));
"""


def test_the_same_choice_as_metas_node_parameter_builder():
    package = node_module("capi-param-builder-nodejs")
    result = subprocess.run(["node", "-e", ORACLE, str(package)], input=json.dumps(CASES), capture_output=True,
                            text=True, timeout=60, check=True)  # fmt: skip
    theirs = json.loads(result.stdout)
    assert theirs.count(None) >= 3  # the oracle does refuse private addresses
    assert [ours(cookie, ip) for cookie, ip in CASES] == theirs


def test_a_client_cannot_choose_its_address_through_x_forwarded_for():
    from tagpipe.pipeline.collect import forwarded_client

    # one trusted proxy (the load balancer) appends the address it saw; what the client wrote is left of it
    assert forwarded_client(f"{V6}, {V4}", 1) == V4
    assert forwarded_client(V6, 0) is None  # no proxy trusted: the header is ignored
    assert forwarded_client("garbage, 203.0.113.9", 1) == "203.0.113.9"
