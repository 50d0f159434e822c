"""Cookie building: formats (Meta's fbp/fbc, GCL), domains, consent gating, refresh, lifetimes."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from tagpipe.identity import (
    IdentityConfig,
    cookie_domain_for,
    enrich_event,
    fb_appendix,
    forward_cookies,
    gcl_value,
    hit_consent,
    make_fbp,
    parse_fb_cookie,
    plan_cookies,
    registrable_domain,
    subdomain_index,
)
from tagpipe.models import ClickIds, ClientContext, Consent, Event

# the issue-6 runtime dependencies (pyproject.toml); skipped with this message where they are missing
pytest.importorskip("crawlerdetect", reason="crawlerdetect is not installed (add it to pyproject.toml's dependencies)")
pytest.importorskip("publicsuffixlist", reason="publicsuffixlist is not installed (add it to pyproject.toml's dependencies)")

NOW = 1_767_225_600.5  # 2026-01-01T00:00:00.5Z
NOW_MS = 1_767_225_600_500
GRANTED = Consent(ad_storage=True, analytics_storage=True)
CFG = IdentityConfig()
FBP_RE = re.compile(r"^fb\.(\d)\.(\d{13})\.(\d+)\.([A-Za-z0-9_-]{8})$")  # with the builder's appendix
APPENDIX = fb_appendix()  # the installed capi-param-builder's (facebook-business depends on it)


def plan(cookies=None, consent=GRANTED, host="collect.shop.example.co.uk", page_url=None, cfg=CFG, **kw):
    return plan_cookies(cfg, host=host, cookies=cookies or {}, consent=consent, page_url=page_url, now=NOW, **kw)


def by_name(p) -> dict:
    return {c.name: c for c in p.set_cookies}


# ------------------------------------------------------------------ domains and subdomainIndex


@pytest.mark.parametrize(
    "host, etld1, index",
    [
        ("shop.example.co.uk", "example.co.uk", 2),
        ("collect.shop.example.co.uk", "example.co.uk", 2),
        ("www.example.com", "example.com", 1),
        ("example.com", "example.com", 1),
        ("Shop.Example.COM:8443", "example.com", 1),
        ("a.b.example.com.au", "example.com.au", 2),
        ("myshop.github.io", "myshop.github.io", 2),  # a private suffix: github.io is like a TLD for cookies
        ("127.0.0.1", None, 0),
        ("127.0.0.1:8080", None, 0),
        ("[::1]:8080", None, 0),
        ("localhost", None, 0),
    ],
)
def test_registrable_domain_and_subdomain_index(host, etld1, index):
    assert registrable_domain(host) == etld1
    domain = cookie_domain_for(host, "auto")
    assert domain == etld1
    assert subdomain_index(host, domain) == index


def test_subdomain_index_matches_metas_param_builder():
    from capi_param_builder import ParamBuilder

    for host, etld1 in [("shop.example.co.uk", "example.co.uk"), ("www.example.com", "example.com"),
                        ("127.0.0.1", None)]:  # fmt: skip
        pb = ParamBuilder([etld1] if etld1 else [])
        pb.process_request(host, {}, {})
        assert pb.sub_domain_index == subdomain_index(host, cookie_domain_for(host, "auto"))


def test_configured_and_host_only_domains():
    assert cookie_domain_for("collect.shop.example", "shop.example") == "shop.example"
    assert cookie_domain_for("shop.example", "shop.example") == "shop.example"
    assert cookie_domain_for("evil.example", "shop.example") is None  # the browser would refuse it
    assert cookie_domain_for("collect.shop.example", "") is None  # host-only
    # a host-only cookie on collect.shop.example lives on 3 labels
    assert subdomain_index("collect.shop.example", None) == 2
    p = plan(cfg=IdentityConfig(cookie_domain=""), host="collect.shop.example")
    assert all(c.domain is None for c in p.set_cookies)
    assert FBP_RE.match(p.values["_fbp"]).group(1) == "2"


def test_cookie_domain_setting_is_validated():
    assert IdentityConfig(cookie_domain=".Shop.Example").cookie_domain == "shop.example"
    with pytest.raises(ValidationError):
        IdentityConfig(cookie_domain="shop example")


# ------------------------------------------------------------------ _fbp


def test_fbp_minted_in_metas_format_with_the_subdomain_index():
    p = plan(host="collect.shop.example.co.uk")
    m = FBP_RE.match(p.values["_fbp"])
    assert m, p.values["_fbp"]
    assert m.group(1) == "2" and m.group(2) == str(NOW_MS)
    assert 0 <= int(m.group(3)) <= 2_147_483_647
    assert "_fbp" in p.minted
    c = by_name(p)["_fbp"]
    assert c.domain == "example.co.uk" and not c.http_only and c.secure and c.same_site == "Lax"
    assert c.max_age == 90 * 86_400


def test_fbp_minted_on_an_ip_host_has_index_0_and_no_domain():
    p = plan(host="127.0.0.1:8080")
    assert p.values["_fbp"].startswith("fb.0.")
    assert by_name(p)["_fbp"].domain is None


@pytest.mark.parametrize(
    "value, valid, meta_keeps",
    [
        ("fb.1.1558571054389.1098115397", True, True),
        ("fb.1.1657051589577.1088522659.AQEAAQMB", True, True),  # Meta's 8-char appendix
        ("fb.1.1657051589577.1088522659.Ag", True, True),  # a legacy language token
        ("fb.1.1657051589577.1088522659.XY", False, False),
        ("fb.1.1657051589577.1088522659.ABC", False, False),
        ("fb.1.1657051589577", False, False),
        ("fb.1.1657051589577.1.2.3", False, False),
        # stricter than Meta's builder (which only counts segments): not fb.<digit>.<ms>.<...> is replaced
        ("xx.1.1657051589577.1088522659", False, True),
        ("fb.x.1657051589577.1088522659", False, True),
    ],
)
def test_fb_cookie_validation_against_metas_param_builder(value, valid, meta_keeps):
    from capi_param_builder import ParamBuilder

    assert (parse_fb_cookie(value) is not None) is valid
    pb = ParamBuilder(["example.com"])
    pb.process_request("www.example.com", {}, {"_fbp": value})
    theirs = pb.get_fbp()
    assert (theirs == value or theirs.startswith(value + ".")) is meta_keeps


def test_existing_fbp_is_kept_byte_for_byte_and_refreshed():
    existing = "fb.1.1657051589577.1088522659.AQEAAQMB"
    p = plan({"_fbp": existing})
    assert p.values["_fbp"] == existing and "_fbp" not in p.minted
    c = by_name(p)["_fbp"]
    assert c.value == existing and c.max_age == 90 * 86_400  # the refresh: a fresh lifetime


def test_a_four_segment_cookie_gets_the_builders_no_change_appendix_on_refresh():
    for name in ("_fbp", "_fbc"):
        existing = "fb.1.1657051589577.1088522659"
        p = plan({name: existing})
        assert p.values[name] == f"{existing}.{APPENDIX.no_change}"
        assert by_name(p)[name].value == p.values[name]


# Case by case against Meta's capi-param-builder-python (its ParamBuilder.process_request on the same
# request): the cookie values collect writes equal the builder's but for the creation time and fbp's
# random part, and each side accepts what the other wrote.
BUILDER_CASES = [
    # (cookies the browser sends, page URL, referer)
    ({}, "https://shop.example.co.uk/", None),
    ({}, "https://shop.example.co.uk/p?fbclid=IwAR_New-1", None),
    ({}, "https://shop.example.co.uk/", "https://shop.example.co.uk/l?fbclid=FromReferer"),
    ({"_fbp": "fb.2.1700000000000.123", "_fbc": "fb.2.1700000000000.OldClick"}, "https://shop.example.co.uk/", None),
    ({"_fbc": "fb.2.1700000000000.OldClick"}, "https://shop.example.co.uk/?fbclid=OldClick", None),
    ({"_fbc": "fb.2.1700000000000.OldClick.AQEAAQMB"}, "https://shop.example.co.uk/?fbclid=NewClick", None),
    ({"_fbp": "fb.2.1700000000000.123.Ag", "_fbc": "fb.2.1700000000000.Old.Ag"}, "https://shop.example.co.uk/", None),
    ({"_fbp": "fb.2.1700000000000.123.XY"}, "https://shop.example.co.uk/", None),  # a bad appendix: replaced
    ({"_fbp": "fb.2.1"}, "https://shop.example.co.uk/", None),  # fewer than 4 segments: replaced
]


def _shape(value: str | None) -> list[str] | None:
    """A cookie value with the parts that differ run to run (creation time; fbp's random) blanked."""
    if value is None:
        return None
    parts = value.split(".")
    parts[2] = "<ms>" if len(parts[2]) == 13 else parts[2]
    return parts


@pytest.mark.parametrize("cookies, page_url, referer", BUILDER_CASES)
def test_cookies_as_metas_parameter_builder_writes_them(cookies, page_url, referer):
    from urllib.parse import parse_qs, urlsplit

    from capi_param_builder import ParamBuilder

    builder = ParamBuilder(["example.co.uk"])
    builder.process_request("collect.shop.example.co.uk", parse_qs(urlsplit(page_url).query), dict(cookies), referer)
    ours = plan(cookies, page_url=page_url, referer=referer).values
    for name, theirs in (("_fbp", builder.get_fbp()), ("_fbc", builder.get_fbc())):
        mine, expected = _shape(ours.get(name)), _shape(theirs)
        if name == "_fbp" and mine and expected and cookies.get("_fbp") != theirs:
            mine[3] = expected[3] = "<random>"  # both minted a new one
        assert mine == expected, (name, ours.get(name), theirs)


@pytest.mark.parametrize("cookies, page_url, referer", BUILDER_CASES)
def test_each_side_keeps_what_the_other_wrote(cookies, page_url, referer):
    from urllib.parse import parse_qs, urlsplit

    from capi_param_builder import ParamBuilder

    ours = plan(cookies, page_url=page_url, referer=referer).values
    builder = ParamBuilder(["example.co.uk"])  # the next request, carrying our cookies: theirs keeps them
    builder.process_request("collect.shop.example.co.uk", {}, {k: ours[k] for k in ("_fbp", "_fbc") if k in ours})
    assert (builder.get_fbp(), builder.get_fbc()) == (ours.get("_fbp"), ours.get("_fbc"))
    written = ParamBuilder(["example.co.uk"])  # and ours keeps the builder's
    written.process_request("collect.shop.example.co.uk", parse_qs(urlsplit(page_url).query), dict(cookies), referer)
    theirs = {k: v for k, v in (("_fbp", written.get_fbp()), ("_fbc", written.get_fbc())) if v}
    assert {k: plan(theirs).values.get(k) for k in theirs} == theirs


def test_invalid_fbp_is_replaced():
    p = plan({"_fbp": "fb.1.garbage"})
    assert FBP_RE.match(p.values["_fbp"]) and "_fbp" in p.minted


def test_no_refresh_keeps_values_but_sends_nothing_for_them():
    existing = "fb.1.1657051589577.1088522659"
    p = plan({"_fbp": existing, "_fpcid": "123.456"}, cfg=IdentityConfig(refresh=False))
    assert p.set_cookies == []
    assert p.values == {"_fbp": existing, "_fpcid": "123.456"}


# ------------------------------------------------------------------ _fbc


def test_fbc_from_fbclid_keeps_it_byte_for_byte():
    fbclid = "IwAR2F4-Dbp_Kx9QeLr0aBcDeFgHiJkLmN"
    p = plan(page_url=f"https://shop.example.co.uk/p?utm_source=fb&fbclid={fbclid}&x=1")
    assert p.values["_fbc"] == f"fb.2.{NOW_MS}.{fbclid}.{APPENDIX.net_new}"
    assert "_fbc" in p.minted and not by_name(p)["_fbc"].http_only


def test_fbclid_is_percent_decoded_once_only():
    p = plan(page_url="https://shop.example.co.uk/?fbclid=Ab%2DCd%2541")
    assert p.values["_fbc"].split(".")[3] == "Ab-Cd%41"


def test_fbc_matches_metas_param_builder_format():
    from capi_param_builder import ParamBuilder

    fbclid = "AbCdEf123"
    pb = ParamBuilder(["example.co.uk"])
    pb.process_request("shop.example.co.uk", {"fbclid": [fbclid]}, {})
    theirs = pb.get_fbc().split(".")
    ours = plan(page_url=f"https://shop.example.co.uk/?fbclid={fbclid}").values["_fbc"].split(".")
    assert ours[:2] == theirs[:2] and ours[3] == theirs[3] == fbclid
    assert len(ours[2]) == len(theirs[2]) == 13  # creation time in ms


def test_new_fbclid_replaces_an_older_fbc_and_the_same_one_keeps_it():
    old = "fb.2.1700000000000.OLDclick.AQEAAQMB"  # with an appendix
    same = plan({"_fbc": old}, page_url="https://shop.example.co.uk/?fbclid=OLDclick")
    assert same.values["_fbc"] == old and "_fbc" not in same.minted
    new = plan({"_fbc": old}, page_url="https://shop.example.co.uk/?fbclid=NEWclick")
    assert new.values["_fbc"] == f"fb.2.{NOW_MS}.NEWclick.{APPENDIX.modified_new}" and "_fbc" in new.minted
    kept = plan({"_fbc": old}, page_url="https://shop.example.co.uk/cart")
    assert kept.values["_fbc"] == old and by_name(kept)["_fbc"].max_age == 90 * 86_400


def test_fbclid_from_the_referer_when_the_page_url_has_none():
    p = plan(page_url="https://shop.example.co.uk/", referer="https://shop.example.co.uk/landing?fbclid=RefClick")
    assert p.values["_fbc"].split(".")[3] == "RefClick"


def test_a_dotted_fbclid_cannot_be_stored_in_metas_format():
    assert "_fbc" not in plan(page_url="https://shop.example.co.uk/?fbclid=a.b").values


def test_no_fbclid_and_no_cookie_sets_no_fbc():
    assert "_fbc" not in plan(page_url="https://shop.example.co.uk/").values


# ------------------------------------------------------------------ Google and TikTok click ids


def test_click_ids_become_first_party_cookies():
    url = "https://shop.example.co.uk/?gclid=Cj0KCQ-aBc&gbraid=0AAAAAx_Yz&wbraid=Wb.1&ttclid=E.C.P.Tt1"
    p = plan(page_url=url)
    assert p.values["_gcl_aw"] == f"GCL.{int(NOW)}.Cj0KCQ-aBc"
    assert p.values["_gcl_gb"] == f"GCL.{int(NOW)}.0AAAAAx_Yz"
    assert p.values["_wbraid"] == f"GCL.{int(NOW)}.Wb.1"
    assert p.values["ttclid"] == "E.C.P.Tt1"
    assert gcl_value(p.values["_wbraid"]) == "Wb.1"
    # later hit without the click in the URL: kept and refreshed
    later = plan(p.values, page_url="https://shop.example.co.uk/checkout")
    assert {k: later.values[k] for k in p.values if k.startswith(("_gcl", "_wb", "tt"))} == {
        k: v for k, v in p.values.items() if k.startswith(("_gcl", "_wb", "tt"))}
    assert not set(later.minted) & {"_gcl_aw", "_gcl_gb", "_wbraid", "ttclid"}


def test_a_new_gclid_replaces_the_cookie():
    p = plan({"_gcl_aw": "GCL.1700000000.OLD"}, page_url="https://shop.example.co.uk/?gclid=NEW")
    assert p.values["_gcl_aw"] == f"GCL.{int(NOW)}.NEW"


# ------------------------------------------------------------------ client id


def test_client_id_cookie_is_httponly_and_capped_at_400_days():
    p = plan()
    c = by_name(p)["_fpcid"]
    assert c.http_only and c.secure and c.max_age == 400 * 86_400
    assert re.fullmatch(r"\d+\.\d{10}", c.value)
    header = c.header(NOW)
    assert "HttpOnly" in header and "Secure" in header and "SameSite=Lax" in header
    assert "Domain=example.co.uk" in header and "Max-Age=34560000" in header
    with pytest.raises(ValidationError):
        IdentityConfig(client_id_days=401)
    with pytest.raises(ValidationError):
        IdentityConfig(ad_cookie_days=500)


def test_client_id_is_seeded_from_ga_or_the_hit():
    assert plan({"_ga": "GA1.1.1197596843.1673515623"}).values["_fpcid"] == "1197596843.1673515623"
    assert plan(hit_client_id="555.666").values["_fpcid"] == "555.666"
    assert plan({"_fpcid": "111.222", "_ga": "GA1.1.3.4"}).values["_fpcid"] == "111.222"
    assert "_fpcid" in plan({"_fpcid": "bad value!"}).minted


# ------------------------------------------------------------------ consent gating


def test_ad_storage_denied_sets_no_ad_cookies():
    p = plan(consent=Consent(ad_storage=False, analytics_storage=True),
             page_url="https://shop.example.co.uk/?fbclid=X1&gclid=G1")  # fmt: skip
    assert set(p.values) == {"_fpcid"}
    assert {c.name for c in p.set_cookies} == {"_fpcid"}


def test_analytics_storage_denied_sets_no_client_id():
    p = plan(consent=Consent(ad_storage=True, analytics_storage=False))
    assert "_fpcid" not in p.values and "_fbp" in p.values


def test_everything_denied_sets_nothing_and_expires_what_exists():
    denied = Consent(ad_storage=False, analytics_storage=False)
    assert plan(consent=denied).set_cookies == []
    p = plan({"_fpcid": "1.2", "_fbp": "fb.1.1558571054389.1098115397", "_gcl_aw": "GCL.1.G"}, consent=denied)
    assert p.values == {}
    assert {(c.name, c.value, c.max_age) for c in p.set_cookies} == {("_fpcid", "", 0), ("_fbp", "", 0), ("_gcl_aw", "", 0)}
    assert all("Expires=Thu, 01 Jan 1970" in c.header(NOW) for c in p.set_cookies)
    assert plan({"_fbp": "fb.1.1558571054389.1098115397"}, consent=denied,
                cfg=IdentityConfig(clear_on_denial=False)).set_cookies == []  # fmt: skip


def test_absent_consent_follows_the_default():
    assert "_fbp" in plan(consent=Consent(), consent_default=True).values
    p = plan({"_fbp": "fb.1.1558571054389.1098115397"}, consent=Consent(), consent_default=False)
    assert p.values == {} and p.set_cookies == []  # no signal is not a denial: nothing cleared either


def test_hit_consent_takes_the_strictest_event():
    c = hit_consent([Consent(ad_storage=True), Consent(ad_storage=False, analytics_storage=True), Consent()])
    assert c.ad_storage is False and c.analytics_storage is True and c.ad_user_data is None


def test_disabled_identity_sets_nothing():
    assert plan(cfg=IdentityConfig(enabled=False)).set_cookies == []


def test_unsafe_cookie_values_are_never_echoed():
    p = plan(page_url="https://shop.example.co.uk/?fbclid=a%3Bb%20c")  # ';' and ' ' after decoding
    assert "_fbc" not in p.values


# ------------------------------------------------------------------ request cookies and enrichment


def test_forward_cookies_keeps_vendor_cookies_only():
    cookies = {"session": "SECRET", "cart": "1", "_ga": "GA1.1.1.2", "_ga_ABC123": "GS1.1", "_gcl_au": "1.1",
               "_fbp": "fb", "_fpcid": "1.2", "_wbraid": "GCL.1.W", "ttclid": "t"}  # fmt: skip
    assert set(forward_cookies(cookies, CFG)) == {"_ga", "_ga_ABC123", "_gcl_au", "_fbp", "_fpcid", "_wbraid", "ttclid"}


def test_cookies_the_tags_read_are_kept():
    from tagpipe.identity import referenced_cookies

    class Cfg:
        variables = {"tier": {"type": "cookie", "name": "customer_tier"}, "x": {"type": "param", "name": "cookie.no"}}
        triggers = {"gold": {"all": [{"var": "cookie.loyalty-level", "in": ["gold"]}]}}
        tags = {"t": {"params": {"seg": "{{cookie.ab_test}}", "n": "{{param.cookie}}"}}}

    names = referenced_cookies(Cfg())
    assert {"customer_tier", "loyalty-level", "ab_test"} <= names
    kept = forward_cookies({"customer_tier": "gold", "ab_test": "B", "session": "S"}, CFG, names)
    assert kept == {"customer_tier": "gold", "ab_test": "B"}


def _event(**kw) -> Event:
    base = dict(event_uid="h:0", hit_id="h", event_id="e", name="page_view", timestamp=NOW, source="json")
    return Event(**{**base, **kw})


def test_enrich_event_uses_the_server_client_id():
    e = _event(client=ClientContext(client_id="from.cid"), cookies={"_fpcid": "111.222"},
               consent=Consent(analytics_storage=True))  # fmt: skip
    assert enrich_event(e, CFG).client.client_id == "111.222"
    assert enrich_event(e, IdentityConfig(client_id_mode="javascript")).client.client_id == "from.cid"
    none = _event(cookies={"_fpcid": "111.222"})
    assert enrich_event(none, IdentityConfig(client_id_mode="javascript")).client.client_id == "111.222"
    denied = _event(cookies={"_fpcid": "111.222"}, consent=Consent(analytics_storage=False))
    assert enrich_event(denied, CFG).client.client_id is None


def test_enrich_event_reads_braid_cookies_and_keeps_url_values():
    e = _event(cookies={"_gcl_gb": "GCL.1.GB1", "_wbraid": "GCL.1.WB1", "ttclid": "TT"},
               click_ids=ClickIds(gbraid="FROM_URL"))  # fmt: skip
    out = enrich_event(e, CFG)
    assert (out.click_ids.gbraid, out.click_ids.wbraid, out.click_ids.ttclid) == ("FROM_URL", "WB1", "TT")
    plain = _event()
    assert enrich_event(plain, CFG) is plain


def test_fbp_helper_range():
    for _ in range(200):
        assert FBP_RE.match(make_fbp(1, NOW_MS))
