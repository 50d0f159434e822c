"""The per-destination consent policy: a matrix of signals x destinations -> allow / restrict / deny."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tagpipe.config import DEFAULT_CONSENT
from tagpipe.consent import ConsentConfig, ConsentPolicy, region_matches
from tagpipe.models import Address, ClickIds, ClientContext, Consent, Event, PageContext, UserData

G, D, N = True, False, None  # granted, denied, no signal


def event(consent: Consent, url="https://shop.example/thanks?gclid=URLCLICK", geo=None) -> Event:
    return Event(
        event_uid="h:0", hit_id="h", event_id="T-1", name="purchase", timestamp=1_767_225_600.0, source="json",
        page=PageContext(url=url),
        client=ClientContext(client_id="111.222", user_id="u-1", session_id="s-1", ip="203.0.113.9",
                             user_agent="UA", geo=geo or {}),
        user_data=UserData(email="jane@example.com", phone="+4915112345678", address=Address(first_name="Jane")),
        click_ids=ClickIds(fbp="fb.1.1558571054389.1", fbc="fb.1.1558571054389.OLD", gclid="URLCLICK",
                           gbraid="FROMCOOKIE", ttp="ttp-1"),
        consent=consent, cookies={"_fbp": "fb.1.1558571054389.1"}, user_properties={"tier": "gold"},
    )  # fmt: skip


def c(ad=N, analytics=N, user_data=N, personalization=N, npa=False, ldu=False) -> Consent:
    return Consent(ad_storage=ad, analytics_storage=analytics, ad_user_data=user_data,
                   ad_personalization=personalization, non_personalized_ads=npa, limited_data_use=ldu)  # fmt: skip


POLICY = ConsentPolicy()
ADVANCED = ConsentPolicy(ConsentConfig(google_mode="advanced"))
STRICT = ConsentPolicy(ConsentConfig(default="denied"))


# (policy, destination type, consent) -> (kind, restrictions or denial reason fragment)
MATRIX = [
    # everything granted: allowed as is
    (POLICY, "meta", c(G, G, G, G), "allow", []),
    (POLICY, "ga4", c(G, G, G, G), "allow", []),
    (POLICY, "google_ads", c(G, G, G, G), "allow", []),
    (POLICY, "tiktok", c(G, G, G, G), "allow", []),
    # no signal at all with the default "granted"
    (POLICY, "meta", c(), "allow", []),
    (POLICY, "ga4", c(), "allow", []),
    # the same with a strict opt-in default: no signal = denied
    (STRICT, "meta", c(), "deny", "ad_storage, ad_user_data"),
    (STRICT, "ga4", c(), "deny", "analytics_storage"),
    (STRICT, "webhook", c(), "allow", []),
    # ad platforms need ad_storage + ad_user_data (defaults of config.DEFAULT_CONSENT)
    (POLICY, "meta", c(ad=D, analytics=G, user_data=G), "deny", "ad_storage"),
    (POLICY, "meta", c(ad=G, user_data=D), "deny", "ad_user_data"),
    (POLICY, "tiktok", c(ad=D, user_data=D), "deny", "ad_storage, ad_user_data"),
    (POLICY, "google_ads", c(ad=D), "deny", "ad_storage"),
    # npa=1: delivered without user data
    (POLICY, "meta", c(G, G, G, npa=True), "restrict", ["strip_user_data"]),
    (POLICY, "google_ads", c(G, G, G, npa=True), "restrict", ["strip_user_data"]),
    (POLICY, "ga4", c(G, G, G, npa=True), "allow", []),  # GA4 forwards ad_personalization=DENIED itself
    # ad_personalization denied alone: allowed (Meta sets opt_out, Google forwards it)
    (POLICY, "meta", c(G, G, G, D), "allow", []),
    # analytics denied: GA4 basic mode drops it, advanced sends a cookieless ping; ad platforms don't care
    (POLICY, "ga4", c(G, D, G, G), "deny", "analytics_storage"),
    (ADVANCED, "ga4", c(G, D, G, G), "restrict", ["cookieless"]),
    (POLICY, "meta", c(G, D, G, G), "allow", []),
    # Meta limited data use from the signal
    (POLICY, "meta", c(G, G, G, ldu=True), "restrict", ["limited_data_use"]),
    (POLICY, "tiktok", c(G, G, G, ldu=True), "allow", []),
    # destinations that need nothing get everything (they receive the consent state to act on)
    (POLICY, "webhook", c(D, D, D, D), "allow", []),
    (POLICY, "log", c(D, D, D, D), "allow", []),
]


@pytest.mark.parametrize("policy, dest, consent, kind, detail", MATRIX)
def test_matrix(policy, dest, consent, kind, detail):
    d = policy.decide(event(consent), dest, DEFAULT_CONSENT[dest])
    assert d.kind == kind
    if kind == "deny":
        assert d.reason == f"consent not granted: {detail}"
    else:
        assert d.restrictions == detail


def test_user_configured_purposes_restrict_instead_of_deny():
    """A Meta destination configured with consent = [] still gets no user data / no cookie ids."""
    e = event(c(ad=D, user_data=D))
    d = POLICY.decide(e, "meta", [])
    assert d.kind == "restrict" and d.restrictions == ["strip_user_data", "strip_ids"]
    out = d.apply(e)
    assert out.user_data == UserData()
    assert out.click_ids.fbp is None and out.click_ids.ttp is None and out.client.client_id is None
    assert out.click_ids.gclid == "URLCLICK"  # in the page URL: passthrough, not storage
    assert out.click_ids.gbraid is None  # from a cookie: gone
    assert out.click_ids.fbc is None and out.cookies == {}
    assert e.user_data.email == "jane@example.com"  # the original is untouched


def test_fbc_of_the_current_click_survives_strip_ids():
    e = event(c(ad=D), url="https://shop.example/?fbclid=NEW")
    e = e.model_copy(update={"click_ids": ClickIds(fbc="fb.1.1700000000000.NEW", fbclid="NEW", fbp="fb.1.1.1")})
    out = POLICY.decide(e, "meta", []).apply(e)
    assert out.click_ids.fbc == "fb.1.1700000000000.NEW" and out.click_ids.fbp is None


def test_cookieless_ga4_ping():
    e = event(c(G, D, G, G))
    d = ADVANCED.decide(e, "ga4", ["analytics_storage"])
    out = d.apply(e)
    assert out.client.client_id and out.client.client_id != "111.222"
    assert out.client.user_id is None and out.client.session_id is None
    assert out.user_data == UserData() and out.user_properties == {}
    assert out.consent.ad_user_data is False and out.consent.ad_personalization is False
    assert out.client.ip == "203.0.113.9" and out.client.user_agent == "UA"
    # deterministic per event (a replay sends the same ping), different across events
    assert d.apply(e).client.client_id == out.client.client_id
    other = e.model_copy(update={"event_uid": "h:1"})
    assert d.apply(other).client.client_id != out.client.client_id


def test_ga4_without_analytics_purpose_configured_is_still_cookieless():
    d = POLICY.decide(event(c(G, D, G, G)), "ga4", [])
    assert d.kind == "restrict" and d.cookieless


@pytest.mark.parametrize(
    "geo, regions, hit",
    [
        ({"country": "US", "region": "CA"}, ["US-CA"], True),
        ({"country": "US", "region": "US-CA"}, ["US-CA"], True),
        ({"country": "US", "region": "USCA"}, ["US-CA"], True),
        ({"country": "us", "region": "ca"}, ["US-CA"], True),  # App Engine sends lowercase
        ({"country": "US", "region": "NY"}, ["US-CA", "US-CO"], False),
        ({"country": "US"}, ["US"], True),
        ({"country": "DE", "region": "BY"}, ["US"], False),
        ({}, ["US-CA"], False),
        ({"country": "US", "region": "CA"}, [], False),
    ],
)
def test_ldu_regions(geo, regions, hit):
    assert region_matches(geo, ConsentConfig(meta_ldu_regions=regions).meta_ldu_regions) is hit


def test_ldu_by_region_sets_the_flag_meta_reads():
    policy = ConsentPolicy(ConsentConfig(meta_ldu_regions=["US-CA", "US-CO"]))
    e = event(c(G, G, G, G), geo={"country": "US", "region": "CA"})
    d = policy.decide(e, "meta", DEFAULT_CONSENT["meta"])
    assert d.kind == "restrict" and d.apply(e).consent.limited_data_use is True
    assert policy.decide(e, "google_ads", DEFAULT_CONSENT["google_ads"]).kind == "allow"
    ny = event(c(G, G, G, G), geo={"country": "US", "region": "NY"})
    assert policy.decide(ny, "meta", DEFAULT_CONSENT["meta"]).kind == "allow"


def test_ldu_reaches_metas_payload():
    from tagpipe.destinations import destination_class

    cls = destination_class("meta")
    dest = cls("meta", cls.Settings(pixel_id="1"), {"access_token": "t"})
    dest.now = lambda: 1_767_225_600.0
    e = event(c(G, G, G, G), geo={"country": "US", "region": "CA"})
    d = ConsentPolicy(ConsentConfig(meta_ldu_regions=["US-CA"])).decide(e, "meta", ["ad_storage", "ad_user_data"])
    payload = dest.prepare(d.apply(e)).payload
    assert payload["data_processing_options"] == ["LDU"]
    stripped = ConsentPolicy().decide(event(c(G, G, G, npa=True)), "meta", []).apply(event(c(G, G, G, npa=True)))
    user_data = dest.prepare(stripped).payload["user_data"]
    assert not {"em", "ph", "fn"} & set(user_data) and user_data["client_user_agent"] == "UA"


def test_config_validation():
    assert ConsentConfig(meta_ldu_regions=["us-ca", " US "]).meta_ldu_regions == ["US-CA", "US"]
    with pytest.raises(ValidationError):
        ConsentConfig(meta_ldu_regions=["California"])
    with pytest.raises(ValidationError):
        ConsentConfig(google_mode="full")
