"""collect sets the cookies, publishes them in the raw hit (first hit uses them), serves the site tag."""

from __future__ import annotations

import json

import pytest

from tagpipe.identity import IdentityConfig
from tagpipe.parsing import parse_hit
from tests.identity.conftest import BROWSER, set_cookies

# the issue-6 runtime dependencies (pyproject.toml); skipped with this message where they are missing
pytest.importorskip("crawlerdetect", reason="crawlerdetect is not installed (add it to pyproject.toml's dependencies)")
pytest.importorskip("publicsuffixlist", reason="publicsuffixlist is not installed (add it to pyproject.toml's dependencies)")

PURCHASE = json.dumps({"event_name": "purchase", "event_id": "T-1", "value": 10, "currency": "EUR",
                       "page_location": "https://shop.example.co.uk/thanks?fbclid=IwAR_Click-1"})  # fmt: skip


def test_first_hit_sets_cookies_and_already_uses_them(collect):
    r = collect.post_json(PURCHASE, cookies={"session": "SECRET"})
    assert r.status_code == 200, r.text
    sc = set_cookies(r)
    assert set(sc) == {"_fpcid", "_fbp", "_fbc"}
    assert "HttpOnly" in sc["_fpcid"] and "HttpOnly" not in sc["_fbp"]
    for header in sc.values():
        assert "Domain=example.co.uk" in header and "Secure" in header and "SameSite=Lax" in header
    assert r.headers["cache-control"] == "no-store"
    [raw] = collect.published()
    assert "session" not in raw.cookies  # the shop's own cookies never reach the queue
    fbp = sc["_fbp"].split(";")[0].split("=", 1)[1]
    fbc = sc["_fbc"].split(";")[0].split("=", 1)[1]
    assert raw.cookies["_fbp"] == fbp and raw.cookies["_fbc"] == fbc
    assert fbc.startswith("fb.2.") and fbc.split(".")[3] == "IwAR_Click-1"
    [event] = parse_hit(raw)  # what transform builds: the minted values are already there
    assert event.click_ids.fbp == fbp and event.click_ids.fbc == fbc


def test_second_hit_refreshes_without_minting(collect):
    first = collect.post_json(PURCHASE)
    values = {k: v.split(";")[0].split("=", 1)[1] for k, v in set_cookies(first).items()}
    collect.published()
    body = json.dumps({"event_name": "page_view", "page_location": "https://shop.example.co.uk/"})
    again = collect.post_json(body, cookies=values)
    refreshed = {k: v.split(";")[0].split("=", 1)[1] for k, v in set_cookies(again).items()}
    assert refreshed == values  # same values, fresh Max-Age
    [raw] = collect.published()
    assert {k: raw.cookies[k] for k in values} == values


def test_gtag_hit_with_denied_ad_storage_gets_only_the_client_id(collect):
    q = ("v=2&tid=G-TEST123&cid=123.456&en=page_view&gcs=G101"
         "&dl=https%3A%2F%2Fshop.example.co.uk%2F%3Ffbclid%3DX1%26gclid%3DG1")  # fmt: skip
    r = collect.http.get(f"/g/collect?{q}", headers={"user-agent": BROWSER["user-agent"]})
    assert r.status_code == 204
    sc = set_cookies(r)
    assert set(sc) == {"_fpcid"}
    assert sc["_fpcid"].startswith("_fpcid=123.456;")  # seeded from gtag's cid


def test_gtag_hit_with_everything_denied_sets_nothing(collect):
    r = collect.http.get("/g/collect?v=2&tid=G-TEST123&cid=1.2&en=page_view&gcs=G100",
                         headers={"user-agent": BROWSER["user-agent"]})  # fmt: skip
    assert r.status_code == 204 and set_cookies(r) == {}


def test_json_consent_object_gates_cookies(collect):
    body = json.dumps({"event_name": "page_view", "consent": {"ad_storage": "denied", "analytics_storage": "denied"}})
    r = collect.post_json(body, cookies={"_fbp": "fb.1.1558571054389.1098115397"})
    sc = set_cookies(r)
    assert set(sc) == {"_fbp"} and "Max-Age=0" in sc["_fbp"]  # an explicit denial expires it


def test_bots_and_server_senders_get_no_cookies(collect):
    bot = collect.post_json(PURCHASE, headers={"user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"})
    assert bot.status_code == 200 and set_cookies(bot) == {}
    headless = collect.post_json(PURCHASE, headers={"user-agent": "Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/140.0 Safari/537.36"})
    assert set_cookies(headless) == {}
    server = collect.http.post("/events", content=PURCHASE.encode(), headers={"content-type": "application/json"})
    assert server.status_code == 200 and set_cookies(server) == {}
    mp = collect.http.post("/mp/collect", content=json.dumps({"client_id": "1.2", "events": [{"name": "x"}]}).encode(),
                           headers={"origin": "https://shop.example.co.uk", "user-agent": BROWSER["user-agent"]})  # fmt: skip
    assert mp.status_code == 204 and set_cookies(mp) == {}


def test_identity_can_be_turned_off(collect):
    collect.collector.identity = IdentityConfig(enabled=False, forward_cookies=["_ga"])
    r = collect.post_json(PURCHASE, cookies={"_ga": "GA1.1.1.2", "_fbp": "fb.1.1558571054389.1"})
    assert set_cookies(r) == {}
    [raw] = collect.published()
    assert raw.cookies == {"_ga": "GA1.1.1.2"}


def test_rejected_hits_set_no_cookies(collect):
    r = collect.post_json("{not json")
    assert r.status_code == 400 and set_cookies(r) == {}


def test_cors_preflight_and_credentials(collect):
    r = collect.post_json(PURCHASE)
    assert r.headers["access-control-allow-origin"] == "https://shop.example.co.uk"
    assert r.headers["access-control-allow-credentials"] == "true"


# ------------------------------------------------------------------ the site tag


def test_site_tag_is_served_with_the_endpoint_and_caching(collect):
    r = collect.http.get("/assets/app.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert "'/events'" not in r.text and '"/events"' in r.text and "%%ENDPOINT%%" not in r.text
    etag = r.headers["etag"]
    again = collect.http.get("/assets/app.js", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert collect.http.head("/assets/app.js").status_code == 200
    assert collect.http.post("/assets/app.js").status_code == 404
