"""Issue 20's click ids: landing parameter -> first-party cookie (consent-gated like _fbc) -> ClickIds.

    Pinterest epik -> _epik     Snapchat ScCid -> _scclid (+ the pixel's _scid)     Reddit rdt_cid -> _rdt_cid
    (+ the pixel's _rdt_uuid)   LinkedIn li_fat_id -> li_fat_id    Microsoft msclkid -> _uetmsclkid = "_uet<id>"
"""

from __future__ import annotations

import json

import pytest

from tagpipe.identity import ClickIdCookies, IdentityConfig, enrich_event, forward_cookies, plan_cookies
from tagpipe.models import Consent, Event, RawHit
from tagpipe.parsing import parse_hit
from tests.identity.conftest import set_cookies

pytest.importorskip("publicsuffixlist", reason="publicsuffixlist is not installed (add it to pyproject.toml's dependencies)")
pytest.importorskip("crawlerdetect", reason="crawlerdetect is not installed (add it to pyproject.toml's dependencies)")

NOW = 1_767_225_600.5
LANDING = ("https://shop.example.co.uk/p?epik=dj0yJnU9Pin-1&ScCid=6f1a-snap-2&rdt_cid=1234_rdt-3"
           "&li_fat_id=7c1b-li-4&msclkid=ms0cl1k5")  # fmt: skip
EXPECTED = {"_epik": "dj0yJnU9Pin-1", "_scclid": "6f1a-snap-2", "_rdt_cid": "1234_rdt-3", "li_fat_id": "7c1b-li-4",
            "_uetmsclkid": "_uetms0cl1k5"}  # fmt: skip
GRANTED = Consent(ad_storage=True, analytics_storage=True)


def plan(cookies=None, consent=GRANTED, page_url=LANDING, cfg=None):
    return plan_cookies(cfg or IdentityConfig(), host="collect.shop.example.co.uk", cookies=cookies or {},
                        consent=consent, page_url=page_url, now=NOW)  # fmt: skip


def test_landing_parameters_become_first_party_cookies():
    p = plan()
    cookies = {c.name: c for c in p.set_cookies}
    assert {name: cookies[name].value for name in EXPECTED} == EXPECTED
    for name in EXPECTED:  # the vendors' own tags read them: not HttpOnly, on the registrable domain
        assert not cookies[name].http_only and cookies[name].domain == "example.co.uk"
        assert cookies[name].max_age == IdentityConfig().ad_cookie_days * 86_400
    assert set(EXPECTED) <= set(p.minted)


def test_a_returning_visitor_keeps_the_ids_and_a_new_click_replaces_them():
    later = plan(cookies=EXPECTED, page_url="https://shop.example.co.uk/cart")
    assert not set(later.minted) & set(EXPECTED)
    assert {name: later.values[name] for name in EXPECTED} == EXPECTED  # refreshed, unchanged
    again = plan(cookies=EXPECTED, page_url="https://shop.example.co.uk/p?msclkid=NEW2&epik=NEW1")
    assert again.values["_uetmsclkid"] == "_uetNEW2" and again.values["_epik"] == "NEW1"
    assert set(again.minted) & set(EXPECTED) == {"_uetmsclkid", "_epik"}


def test_no_ad_storage_no_cookies_and_a_denial_expires_them():
    unknown = plan(consent=Consent(analytics_storage=True), cfg=IdentityConfig())  # absent = granted by default
    assert set(EXPECTED) <= {c.name for c in unknown.set_cookies}
    denied = plan(cookies=EXPECTED, consent=Consent(ad_storage=False, analytics_storage=True))
    expired = {c.name for c in denied.set_cookies if c.max_age == 0}
    assert expired == set(EXPECTED)
    assert not {c.name for c in denied.set_cookies if c.max_age} & set(EXPECTED)
    off = plan(cfg=IdentityConfig(click_ids=False))
    assert not {c.name for c in off.set_cookies} & set(EXPECTED)


def test_renamed_cookies_and_forwarding():
    cfg = IdentityConfig(click_id_cookies=ClickIdCookies(epik="pin_click", msclkid="ms_click"))
    p = plan(cfg=cfg)
    assert p.values["pin_click"] == "dj0yJnU9Pin-1" and p.values["ms_click"] == "_uetms0cl1k5"
    browser = {"pin_click": "P", "ms_click": "_uetM", "_scid": "SCID", "_rdt_uuid": "1767225600000.u-u-i-d",
               "_uetvid": "V", "li_fat_id": "L", "shop_session": "SECRET"}  # fmt: skip
    kept = forward_cookies(browser, cfg)
    assert "shop_session" not in kept and set(kept) == set(browser) - {"shop_session"}
    event = Event(event_uid="h:0", hit_id="h", event_id="e", name="purchase", timestamp=NOW, source="json",
                  cookies=kept)  # fmt: skip
    clicks = enrich_event(event, cfg).click_ids
    assert (clicks.epik, clicks.msclkid) == ("P", "M")  # the renamed cookies, "_uet" taken off


def test_the_parsers_fill_click_ids_from_url_and_cookies():
    cookies = {"_epik": "PIN-COOKIE", "_scclid": "SNAP-COOKIE", "_scid": "SCID-1", "_rdt_cid": "RDT-COOKIE",
               "_rdt_uuid": "1767225600000.0b7d-uuid", "li_fat_id": "LI-COOKIE", "_uetmsclkid": "_uetMS-COOKIE",
               "_uetvid": "VID-1"}  # fmt: skip
    raw = RawHit(source="json", body=json.dumps({"event_name": "purchase", "event_id": "T-9",
                                                 "page_location": "https://shop.example.co.uk/thanks"}),
                 cookies=cookies)  # fmt: skip
    [event] = parse_hit(raw)
    c = event.click_ids
    assert (c.epik, c.sc_click_id, c.sc_cookie1, c.rdt_cid, c.rdt_uuid, c.li_fat_id, c.msclkid, c.uet_vid) == (
        "PIN-COOKIE", "SNAP-COOKIE", "SCID-1", "RDT-COOKIE", "1767225600000.0b7d-uuid", "LI-COOKIE", "MS-COOKIE", "VID-1")
    raw = raw.model_copy(update={"body": json.dumps({"event_name": "purchase", "page_location": LANDING})})
    [event] = parse_hit(raw)
    c = event.click_ids  # the URL wins over an older cookie
    assert (c.epik, c.sc_click_id, c.rdt_cid, c.li_fat_id, c.msclkid) == (
        "dj0yJnU9Pin-1", "6f1a-snap-2", "1234_rdt-3", "7c1b-li-4", "ms0cl1k5")
    assert c.sc_cookie1 == "SCID-1"  # browser ids only come from cookies
    gtag = RawHit(source="gtag", method="POST", path="/g/collect",
                  query="v=2&tid=G-TEST123&cid=1.2&en=page_view&dl=" + LANDING.replace("&", "%26").replace("?", "%3F"),
                  cookies={"_scid": "SCID-1"})  # fmt: skip
    [event] = parse_hit(gtag)
    assert (event.click_ids.epik, event.click_ids.msclkid, event.click_ids.sc_cookie1) == ("dj0yJnU9Pin-1", "ms0cl1k5", "SCID-1")


def test_collect_sets_them_and_the_first_hit_already_carries_them(collect):
    body = json.dumps({"event_name": "page_view", "page_location": LANDING})
    r = collect.post_json(body, cookies={"_scid": "SCID-1"})
    assert r.status_code == 200, r.text
    sc = set_cookies(r)
    assert set(EXPECTED) <= set(sc)
    [raw] = collect.published()
    assert {name: raw.cookies[name] for name in EXPECTED} == EXPECTED and raw.cookies["_scid"] == "SCID-1"
    denied = json.dumps({"event_name": "page_view", "page_location": LANDING,
                         "consent": {"ad_storage": "denied", "analytics_storage": "granted"}})  # fmt: skip
    r = collect.post_json(denied)
    assert not set(EXPECTED) & set(set_cookies(r))
