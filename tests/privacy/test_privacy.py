"""What leaves transform and what is stored: IP options, pseudonymisation, scrubbing."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from tagpipe.models import ClientContext, Event, PageContext, UserData
from tagpipe.privacy import (
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
    import tagpipe.bots as bots
    import tagpipe.identity as identity

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


LEAKY = dict(
    page=PageContext(url="https://shop.example/thanks?email=jane%40example.com&order=1001",
                     referrer="https://shop.example/checkout?e=jane@example.com", title="Thanks jane@example.com"),
    params={"customer_email": "Jane@Example.com", "order_ref": "1001", "value": 12.5},
    user_properties={"contact": "jane@example.com"},
    headers={"referer": "https://shop.example/checkout?e=jane@example.com", "user-agent": "Mozilla/5.0"},
)


def test_vendor_event_scrubs_emails_from_free_text_by_default():
    e = event(**LEAKY)
    out = vendor_event(e, PrivacyConfig())
    text = out.model_dump_json(exclude={"user_data"}).lower()
    assert "jane" not in text and "example.com" not in text.replace("shop.example", "")
    assert out.page.url == "https://shop.example/thanks?email=[redacted]&order=1001"
    assert out.params == {"customer_email": "[redacted]", "order_ref": "1001", "value": 12.5}
    assert out.headers["user-agent"] == "Mozilla/5.0"
    assert out.user_data.email == " Jane@Example.com "  # hashed per vendor later, never scrubbed
    assert e.params["customer_email"] == "Jane@Example.com"  # the input is not mutated


def test_vendor_event_keeps_free_text_when_told_and_clean_events_untouched():
    e = event(**LEAKY)
    assert vendor_event(e, PrivacyConfig(emails_to_vendors="keep")) is e
    clean = event(page=PageContext(url="https://shop.example/p?id=7"), params={"sku": "A-1"})
    assert vendor_event(clean, PrivacyConfig()) is clean


def test_meta_payload_carries_the_email_hashed_only():
    from tests.destinations.conftest import make_event
    from tests.destinations.test_meta import meta

    leaky = make_event(user_data=UserData(email="Jane@Example.com"), **{k: v for k, v in LEAKY.items() if k != "page"},
                       page=LEAKY["page"].model_copy(update={"title": None}))
    prepared = meta().prepare(vendor_event(leaky, PrivacyConfig()))
    body = str(prepared.payload).lower()
    assert "jane@example.com" not in body and "jane%40example.com" not in body
    assert prepared.payload["event_source_url"] == "https://shop.example/thanks?email=[redacted]&order=1001"
    assert hashlib.sha256(b"jane@example.com").hexdigest() in str(prepared.payload["user_data"]["em"])
    unscrubbed = meta().prepare(vendor_event(leaky, PrivacyConfig(emails_to_vendors="keep")))
    assert "jane%40example.com" in str(unscrubbed.payload)  # the check above can fail


def test_redact_event_still_drops_forwarding_headers_when_the_referer_holds_an_email():
    e = event(headers={"referer": "https://s.example/?e=jane@example.com", "cookie": "sid=1", "x-forwarded-for": "1.2.3.4"})
    assert redact_event(e).headers == {"referer": "https://s.example/?e=[redacted]"}
