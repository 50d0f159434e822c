"""What leaves transform and what is stored: IP options, pseudonymisation, scrubbing."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from shared.models import ClientContext, Event, PageContext, UserData
from shared.privacy import (
    PrivacyConfig,
    privacy_config,
    redact_event,
    scrub_text,
    stored_event,
    truncate_ip,
    vendor_event,
)


def event(ip="203.0.113.77", **kw) -> Event:
    return Event(event_uid="h:0", hit_id="h", event_id="e", name="purchase", timestamp=1.7e9, source="json",
                 client=ClientContext(ip=ip, client_id="1.2"), user_data=UserData(email=" Jane@Example.com "),
                 **kw)  # fmt: skip


@pytest.mark.parametrize(
    "ip, truncated",
    [("203.0.113.77", "203.0.113.0"), ("2001:db8:85a3:1234:5678:8a2e:370:7334", "2001:db8:85a3::"),
     ("not an ip", None), (None, None)],
)  # fmt: skip
def test_truncate_ip(ip, truncated):
    assert truncate_ip(ip) == truncated


@pytest.mark.parametrize("mode, expected", [("full", "203.0.113.77"), ("truncated", "203.0.113.0"), ("none", None)])
def test_ip_to_vendors(mode, expected):
    e = event()
    out = vendor_event(e, PrivacyConfig(ip_to_vendors=mode))
    assert out.client.ip == expected
    assert e.client.ip == "203.0.113.77"
    if mode == "full":
        assert out is e


@pytest.mark.parametrize(
    "raw_pii, mode, ip, email",
    [
        (False, "auto", "203.0.113.0", hashlib.sha256(b"jane@example.com").hexdigest()),
        (True, "auto", "203.0.113.77", " Jane@Example.com "),
        (True, "truncated", "203.0.113.0", " Jane@Example.com "),
        (False, "none", None, hashlib.sha256(b"jane@example.com").hexdigest()),
        (False, "full", "203.0.113.77", hashlib.sha256(b"jane@example.com").hexdigest()),
    ],
)
def test_stored_event(raw_pii, mode, ip, email):
    out = stored_event(event(), PrivacyConfig(store_raw_pii=raw_pii, ip_in_store=mode))
    assert out.client.ip == ip and out.user_data.email == email


def test_redaction_takes_emails_out_of_urls_and_params():
    e = event(page=PageContext(url="https://shop.example/thanks?email=jane%40example.com&o=1",
                               referrer="https://shop.example/login?u=jane@example.com"),
              params={"contact": "jane@example.com", "n": 3}, headers={"referer": "https://x/?e=jane@example.com"})  # fmt: skip
    out = redact_event(e)
    assert out.page.url == "https://shop.example/thanks?email=[redacted]&o=1"
    assert "jane" not in out.page.referrer and "jane" not in out.headers["referer"]
    assert out.params == {"contact": "[redacted]", "n": 3}
    plain = event(page=PageContext(url="https://shop.example/p/1"))
    assert redact_event(plain).page == plain.page


def test_scrub_text_covers_ipv6_but_not_times():
    text = 'ip 2001:db8::1, ::1 and 2a02:8109:9a3f:1200:1c3d:e5ff:fe2a:7b01 at 12:30:45 for jane@example.com from 10.0.0.1'
    out = scrub_text(text)
    assert "2001:db8" not in out and "2a02" not in out and "jane" not in out and "10.0.0.1" not in out
    assert "12:30:45" in out


def test_config_and_fallback():
    with pytest.raises(ValidationError):
        PrivacyConfig(ip_to_vendors="half")
    with pytest.raises(ValidationError):
        PrivacyConfig(retention_days=-1)

    class Old:  # config.py's older section: only store_raw_pii
        class privacy:
            store_raw_pii = True

    assert privacy_config(Old()).store_raw_pii is True
    assert privacy_config(object()) == PrivacyConfig()


def test_missing_optional_packages_degrade_instead_of_crashing(monkeypatch):
    """Without crawlerdetect / publicsuffixlist installed, collect keeps working: no bot list
    (allow/deny only), host-only cookies."""
    import shared.bots as bots
    import shared.identity as identity

    def missing():
        raise ImportError("not installed")

    monkeypatch.setattr(bots, "library_patterns", missing)
    f = bots.BotFilter(bots.BotConfig(deny=["EvilBot"]))
    assert not f.is_bot("Mozilla/5.0 (compatible; Googlebot/2.1)") and f.is_bot("EvilBot/1")
    monkeypatch.setattr(identity, "_psl", lambda: None)
    identity.registrable_domain.cache_clear()
    try:
        assert identity.cookie_domain_for("shop.example.co.uk", "auto") is None
    finally:
        identity.registrable_domain.cache_clear()
