"""privacy.truncate_ip's IPv4 fast path gives exactly what the ipaddress version gives, for any input."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tagpipe.privacy import truncate_ip, truncate_ip_by_ipaddress


def reference(ip: str | None) -> str | None:
    """truncate_ip as it was: ipaddress only."""
    return truncate_ip_by_ipaddress(ip) if ip else ip


octet = st.one_of(
    st.integers(0, 999).map(str),
    st.integers(0, 255).map(lambda n: f"0{n}"),  # leading zeros: refused
    st.text("0123456789", min_size=0, max_size=4),
    st.text("0123456789 +-_xX\u0661\u00b2\uff11", min_size=0, max_size=4),  # signs, spaces, non-ASCII digits
)
dotted = st.lists(octet, min_size=1, max_size=6).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(dotted, ipv4, ipv6, st.text(max_size=20), st.none()))
@example("1.2.3.4")
@example("0.0.0.0")
@example("255.255.255.255")
@example("256.0.0.1")
@example("01.2.3.4")
@example("1.2.3.4 ")
@example("1..2.3")
@example("::ffff:1.2.3.4")
@example("1.2.3.4%eth0")
@example("\u0661.2.3.4")
def test_truncate_ip_matches_ipaddress(ip):
    assert truncate_ip(ip) == reference(ip)


def test_the_fast_path_is_taken_for_plain_ipv4(monkeypatch):
    import tagpipe.privacy as privacy

    def boom(*_a, **_k):
        raise AssertionError("ipaddress used for a dotted IPv4")

    monkeypatch.setattr(privacy.ipaddress, "ip_address", boom)
    assert truncate_ip("203.0.113.77") == "203.0.113.0"
