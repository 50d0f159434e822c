"""gtag.js v2 (/g/collect) rules, one test per rule."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tagpipe.parsing import (
    MAX_GTAG_EVENTS,
    MAX_ITEMS_PER_EVENT,
    MAX_PARAMS_PER_EVENT,
    MAX_VALUE_BYTES,
    parse_hit,
)
from tagpipe.parsing.gtag import parse_item

from .helpers import BASE, gtag_hit, one, refused

# --------------------------------------------------------------------------- body lines


def test_empty_body_is_one_event_from_the_url() -> None:
    for body in ("", "   ", "\r\n\n"):
        events = parse_hit(gtag_hit(body=body))
        assert [e.name for e in events] == ["page_view"]


def test_lines_split_on_crlf_and_lf_blank_lines_skipped() -> None:
    events = parse_hit(gtag_hit(BASE, body="en=a\r\nen=b\n\n  en=c  \r\n"))
    assert [e.name for e in events] == ["a", "b", "c"]
    assert [e.event_uid for e in events] == ["h1:0", "h1:1", "h1:2"]


def test_url_params_are_shared_and_line_params_win() -> None:
    q = BASE + "&dl=https%3A%2F%2Fa.example%2F&dt=URL%20title&en=url_event"
    a, b = parse_hit(gtag_hit(q, body="en=a\nen=b&dt=Line%20title"))
    assert (a.name, a.page.title, a.page.url) == ("a", "URL title", "https://a.example/")
    assert (b.name, b.page.title, b.client.client_id) == ("b", "Line title", "111.222")


def test_event_may_be_only_in_the_body() -> None:
    assert one(gtag_hit(BASE, body="en=purchase")).name == "purchase"


def test_too_many_lines() -> None:
    body = "\n".join(["en=x"] * (MAX_GTAG_EVENTS + 1))
    refused(gtag_hit(BASE, body=body), "too_many_events", 413)
    assert len(parse_hit(gtag_hit(BASE, body="\n".join(["en=x"] * MAX_GTAG_EVENTS)))) == MAX_GTAG_EVENTS


def test_version_must_be_2() -> None:
    err = refused(gtag_hit("v=1&tid=UA-1&t=pageview&en=x"), "unsupported_version")
    assert "v=1" in err.message
    refused(gtag_hit("tid=G-1&en=x"), "unsupported_version")
    refused(gtag_hit("tid=G-1", body="en=x&v=3"), "unsupported_version")


def test_event_name_required_per_event() -> None:
    refused(gtag_hit(BASE), "missing_event_name")
    err = refused(gtag_hit(BASE, body="en=ok\nep.a=1"), "missing_event_name")
    assert "line 2" in err.message
    refused(gtag_hit(BASE + "&en=%20%20"), "missing_event_name")


# --------------------------------------------------------------------------- decoding


def test_split_on_ampersand_before_decoding() -> None:
    ev = one(gtag_hit(BASE + "&en=x&ep.q=a%26b%3Dc&dt=50%25"))
    assert ev.params["q"] == "a&b=c"
    assert ev.page.title == "50%"


def test_plus_is_a_space_and_encoded_plus_is_a_plus() -> None:
    ev = one(gtag_hit(BASE + "&en=x&ep.a=b+c&ep.d=e%2Bf"))
    assert (ev.params["a"], ev.params["d"]) == ("b c", "e+f")


def test_malformed_escapes_stay_literal() -> None:
    ev = one(gtag_hit(BASE + "&en=x&ep.a=5%%20off&ep.b=%zz&ep.c=%4"))
    assert (ev.params["a"], ev.params["b"], ev.params["c"]) == ("5% off", "%zz", "%4")


def test_invalid_utf8_after_decoding() -> None:
    err = refused(gtag_hit(BASE + "&en=x&ep.a=%C3%28"), "invalid_utf8")
    assert "'ep.a'" in err.message
    refused(gtag_hit(BASE + "&en=x&ep.%FF=1"), "invalid_utf8")


def test_first_occurrence_of_a_key_wins_within_one_string() -> None:
    assert one(gtag_hit(BASE + "&en=first&en=second")).name == "first"


def test_percent_encoded_key() -> None:
    assert one(gtag_hit(BASE + "&en=x&ep.caf%C3%A9=1")).params == {"café": "1"}


def test_value_too_large() -> None:
    refused(gtag_hit(BASE + "&en=x&ep.big=" + "a" * (MAX_VALUE_BYTES + 1)), "value_too_large", 413)
    one(gtag_hit(BASE + "&en=x&ep.big=" + "a" * MAX_VALUE_BYTES))
    emoji = quote("😀")  # 4 bytes
    refused(gtag_hit(BASE + "&en=x&ep.big=" + emoji * (MAX_VALUE_BYTES // 4 + 1)), "value_too_large", 413)
    one(gtag_hit(BASE + "&en=x&ep.big=" + emoji * (MAX_VALUE_BYTES // 4)))


def test_too_many_params() -> None:
    many = "&".join(f"ep.p{i}=1" for i in range(MAX_PARAMS_PER_EVENT))
    refused(gtag_hit(BASE + "&en=x&" + many), "too_many_params", 413)
    # URL + line together
    half = "&".join(f"ep.u{i}=1" for i in range(MAX_PARAMS_PER_EVENT // 2 + 5))
    other = "&".join(f"ep.l{i}=1" for i in range(MAX_PARAMS_PER_EVENT // 2 + 5))
    err = refused(gtag_hit(BASE + "&" + half, body="en=x&" + other), "too_many_params", 413)
    assert "body line 1" in err.message


# --------------------------------------------------------------------------- fields


def test_request_fields() -> None:
    q = (
        "v=2&tid=G-ABC&cid=1.2&uid=user-9&sid=1700000000&sct=7&_et=1234&ul=de-de&sr=1920x1080"
        "&dl=https%3A%2F%2Fshop.example%2Fp%3Fa%3D1&dr=https%3A%2F%2Fref.example%2F&dt=Title&dh=shop.example&en=x"
    )
    ev = one(gtag_hit(q))
    assert ev.measurement_id == "G-ABC"
    c = ev.client
    assert (c.client_id, c.user_id, c.session_id, c.session_count, c.engagement_time_msec) == (
        "1.2",
        "user-9",
        "1700000000",
        7,
        1234,
    )
    assert (c.language, c.screen_resolution) == ("de-de", "1920x1080")
    assert ev.page.model_dump() == {
        "url": "https://shop.example/p?a=1",
        "referrer": "https://ref.example/",
        "title": "Title",
        "hostname": "shop.example",
    }
    assert ev.action_source == "website"


def test_hostname_from_dl_when_dh_missing_and_bad_numbers_ignored() -> None:
    ev = one(gtag_hit(BASE + "&en=x&dl=https%3A%2F%2FWWW.Example.com%2F&sct=abc&_et=NaN"))
    assert ev.page.hostname == "www.example.com"
    assert (ev.client.session_count, ev.client.engagement_time_msec) == (None, None)


def test_ep_strings_epn_numbers() -> None:
    ev = one(
        gtag_hit(
            BASE + "&en=x&ep.s=42&epn.i=42&epn.f=4.5&epn.e=1e3&epn.nan=NaN&epn.word=abc&ep.=skip&epn.=skip"
        )
    )
    assert ev.params == {"s": "42", "i": 42, "f": 4.5, "e": 1000.0, "nan": "NaN", "word": "abc"}
    assert isinstance(ev.params["i"], int)


def test_user_properties() -> None:
    ev = one(gtag_hit(BASE + "&en=x&up.plan=pro&upn.age=42&upn.score=1.5&upn.bad=x"))
    assert ev.user_properties == {"plan": "pro", "age": 42, "score": 1.5, "bad": "x"}


def test_protocol_and_server_container_params_are_not_params() -> None:
    q = (
        BASE
        + "&en=x&gtm=45je&_p=1&_s=2&tfd=9&sst.tft=1&sst.gcd=13l3&gap.gtb=2&tag_exp=1~2&_eu=AAI&richsstsse&ep.keep=1"
    )
    assert one(gtag_hit(q)).params == {"keep": "1"}


def test_ecommerce_fields_are_not_duplicated_in_params() -> None:
    q = (
        BASE
        + "&en=purchase&cu=eur&ep.transaction_id=T1&epn.value=30.5&epn.tax=1&epn.shipping=2&ep.coupon=C&ep.other=o"
    )
    ev = one(gtag_hit(q))
    assert ev.ecommerce.model_dump(exclude={"items"}) == {
        "value": 30.5,
        "currency": "EUR",
        "transaction_id": "T1",
        "tax": 1.0,
        "shipping": 2.0,
        "coupon": "C",
    }
    assert ev.params == {"other": "o"}


def test_value_sent_as_ep_string_and_unparsable_value() -> None:
    assert one(gtag_hit(BASE + "&en=x&ep.value=7630")).ecommerce.value == 7630.0
    ev = one(gtag_hit(BASE + "&en=x&epn.value=NaN"))
    assert (ev.ecommerce.value, ev.params) == (None, {"value": "NaN"})
    assert one(gtag_hit(BASE + "&en=x&ep.currency=usd")).ecommerce.currency == "USD"


def test_test_event_code() -> None:
    ev = one(gtag_hit(BASE + "&en=x&ep.test_event_code=TEST42"))
    assert ev.test_event_code == "TEST42" and "test_event_code" not in ev.params


def test_experiments() -> None:
    ev = one(gtag_hit(BASE + "&en=x&ep.experiment_id=exp1&ep.variant_id=B&ep.exp_hero=blue&ep.keep=1"))
    assert ev.experiments == {"exp1": "B", "hero": "blue"}
    assert ev.params == {"keep": "1"}
    # experiment_id alone is an ordinary param
    assert one(gtag_hit(BASE + "&en=x&ep.experiment_id=exp1")).params == {"experiment_id": "exp1"}


# --------------------------------------------------------------------------- items


def test_items_all_codes() -> None:
    text = "idSKU~nmTee~afStore~cpC1~ds1.5~lp3~brB~caA~c2B~c3C~c4D~c5E~liL1~lnList~vagreen~loLOC~pr10.01~qt2~cnCN~csCS~piPI~pnPN"
    assert parse_item(text) == {
        "item_id": "SKU",
        "item_name": "Tee",
        "affiliation": "Store",
        "coupon": "C1",
        "discount": 1.5,
        "index": 3,
        "item_brand": "B",
        "item_category": "A",
        "item_category2": "B",
        "item_category3": "C",
        "item_category4": "D",
        "item_category5": "E",
        "item_list_id": "L1",
        "item_list_name": "List",
        "item_variant": "green",
        "location_id": "LOC",
        "price": 10.01,
        "quantity": 2.0,
        "creative_name": "CN",
        "creative_slot": "CS",
        "promotion_id": "PI",
        "promotion_name": "PN",
    }


def test_item_custom_params_and_variant() -> None:
    item = parse_item("idX~va42~k0size~v042~k1color~v1dark%20red~vaXL")
    assert item["item_variant"] == "42"  # 'va' is the variant; the first one wins
    assert item["custom"] == {"size": "42", "color": "dark%20red"}  # parse_item gets decoded text


def test_item_custom_params_multi_digit_and_out_of_order() -> None:
    keys = "~".join(f"k{i}key{i}" for i in range(12))
    vals = "~".join(f"v{i}{i * 100}" for i in reversed(range(12)))
    item = parse_item("idX~" + keys + "~" + vals)
    assert item["custom"] == {f"key{i}": str(i * 100) for i in range(12)}


def test_item_unknown_codes_kept_bad_numbers_dropped() -> None:
    item = parse_item("idX~zz99~prabc~qt~lp1.5~x~v9orphan")
    assert item == {"item_id": "X", "custom": {"zz": "99"}}


def test_items_sorted_by_index_and_decoded() -> None:
    q = BASE + "&en=view_item_list&pr10=idTEN&pr2=idTWO~nmA%20%26%20B&pr1=idONE&pr3="
    items = one(gtag_hit(q)).ecommerce.items
    assert [i.item_id for i in items] == ["ONE", "TWO", "TEN"]
    assert items[1].item_name == "A & B"


def test_too_many_items() -> None:
    q = BASE + "&en=x&" + "&".join(f"pr{i}=id{i}" for i in range(1, MAX_ITEMS_PER_EVENT + 2))
    refused(gtag_hit(q), "too_many_items", 413)


def test_pr_lookalike_keys_are_not_items() -> None:
    assert one(gtag_hit(BASE + "&en=x&pr=idA&prx=idB&pr1234567=idC")).ecommerce.items == []


# --------------------------------------------------------------------------- client hints


def test_client_hints_and_double_encoded_full_version_list() -> None:
    q = (
        BASE + "&en=x&uaa=arm&uab=64&uamb=0&uam=&uap=macOS&uapv=14.4.1&uaw=0"
        "&uafvl=Google%2520Chrome%3B149.0.7827.114%7CNot)A%253BBrand%3B24.0.0.0%7CChromium%3B149.0"
    )
    hints = one(gtag_hit(q)).client.client_hints
    assert hints == {
        "architecture": "arm",
        "bitness": "64",
        "mobile": "0",
        "platform": "macOS",
        "platform_version": "14.4.1",
        "wow64": "0",
        "full_version_list": '"Google Chrome";v="149.0.7827.114", "Not)A;Brand";v="24.0.0.0", "Chromium";v="149.0"',
    }


def test_full_version_list_without_versions() -> None:
    assert one(gtag_hit(BASE + "&en=x&uafvl=Chromium")).client.client_hints == {
        "full_version_list": '"Chromium"'
    }


# --------------------------------------------------------------------------- consent


@pytest.mark.parametrize(
    ("gcs", "ad", "analytics"),
    [
        ("G100", False, False),
        ("G110", True, False),
        ("G101", False, True),
        ("G111", True, True),
        ("G1--", None, None),
        ("X", None, None),
    ],
)
def test_gcs(gcs: str, ad: bool | None, analytics: bool | None) -> None:
    c = one(gtag_hit(BASE + f"&en=x&gcs={gcs}")).consent
    assert (c.ad_storage, c.analytics_storage) == (ad, analytics)
    assert c.raw == {"gcs": gcs}


@pytest.mark.parametrize(
    ("letter", "state"),
    [
        ("l", None),
        ("p", False),
        ("q", False),
        ("m", False),
        ("u", False),
        ("t", True),
        ("r", True),
        ("n", True),
        ("v", True),
        ("z", None),
    ],
)
def test_gcd_letters(letter: str, state: bool | None) -> None:
    c = one(gtag_hit(BASE + f"&en=x&gcd=13{letter}3{letter}3{letter}3{letter}5")).consent
    assert (c.ad_storage, c.analytics_storage, c.ad_user_data, c.ad_personalization) == (state,) * 4


def test_gcd_positions() -> None:
    c = one(gtag_hit(BASE + "&en=x&gcd=11l1p1t1v5")).consent  # quartz.ctysse.net example shape
    assert (c.ad_storage, c.analytics_storage, c.ad_user_data, c.ad_personalization) == (
        None,
        False,
        True,
        True,
    )
    c = one(gtag_hit(BASE + "&en=x&gcd=13n3nPn2n5l1")).consent  # real capture: a letter separator
    assert (c.ad_storage, c.analytics_storage, c.ad_user_data, c.ad_personalization) == (True,) * 4
    assert one(gtag_hit(BASE + "&en=x&gcd=13p")).consent.ad_storage is None  # too short


def test_denied_wins_when_gcs_and_gcd_disagree() -> None:
    c = one(gtag_hit(BASE + "&en=x&gcs=G111&gcd=13p3v3v3v5")).consent
    assert (c.ad_storage, c.analytics_storage) == (False, True)
    c = one(gtag_hit(BASE + "&en=x&gcs=G100&gcd=13v3v3v3v5")).consent
    assert (c.ad_storage, c.analytics_storage, c.ad_user_data) == (False, False, True)


def test_npa_dma() -> None:
    c = one(gtag_hit(BASE + "&en=x&npa=1&dma=1&dma_cps=sypham")).consent
    assert (c.non_personalized_ads, c.ad_personalization, c.dma) == (True, False, True)
    assert c.raw == {"npa": "1", "dma": "1", "dma_cps": "sypham"}
    c = one(gtag_hit(BASE + "&en=x&npa=1&gcd=13v3v3v3v5")).consent
    assert c.ad_personalization is True  # an explicit gcd grant is not overridden by npa
    c = one(gtag_hit(BASE + "&en=x&npa=0&dma=0")).consent
    assert (c.non_personalized_ads, c.ad_personalization, c.dma) == (False, None, False)


def test_no_consent_params_means_unknown() -> None:
    c = one(gtag_hit()).consent
    assert (c.ad_storage, c.ad_user_data, c.raw) == (None, None, {})


# --------------------------------------------------------------------------- user data

SHA_HEX = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"  # sha256("test@example.com")
SHA_B64URL = "lz3-Rj7IV4X1-Vr1ujkG7tstkxwk5pgkqJ6mXbpOgTs"  # the same 32 bytes, base64url without padding


def test_em_base64url_and_hex_become_lowercase_hex() -> None:
    em = f"tv.1~em.{SHA_B64URL}~pn.{SHA_HEX.upper()}~fn0.{SHA_B64URL}~ln0.e2~sa0.{SHA_HEX}~pc0.94043~co0.US"
    u = one(gtag_hit(BASE + "&en=x&em=" + em)).user_data
    assert (u.email, u.phone) == (SHA_HEX, SHA_HEX)
    assert (u.address.first_name, u.address.last_name, u.address.street) == (SHA_HEX, None, SHA_HEX)
    assert (u.address.postal_code, u.address.country) == ("94043", "US")


def test_em_needs_tag_version_1_and_skips_errors_and_junk() -> None:
    assert one(gtag_hit(BASE + f"&en=x&em=tv.2~em.{SHA_HEX}")).user_data.email is None
    assert one(gtag_hit(BASE + f"&en=x&em=em.{SHA_HEX}")).user_data.email is None
    u = one(gtag_hit(BASE + f"&en=x&em=tv.1~em.e1~em.{SHA_HEX}~pn.short~foo~.x~em.")).user_data
    assert (u.email, u.phone) == (SHA_HEX, None)


def test_em_token_alone_is_not_a_param() -> None:
    assert one(gtag_hit(BASE + "&en=x&em=tv.1")).params == {}


def test_ep_user_data_fields() -> None:
    q = (
        BASE + "&en=x&ep.user_data.email_address=a%40b.example&ep.user_data.phone_number=%2B15551234567"
        "&ep.user_data.address.0.first_name=Ann&ep.user_data.address.0.sha256_last_name="
        + SHA_HEX
        + "&ep.user_data.address.1.first_name=Other&ep.user_data.address.city=Paris&ep.user_data.gender=f"
        "&ep.user_data._tag_metadata.email.mode=m&ep.user_data.unknown=z"
    )
    ev = one(gtag_hit(q))
    u = ev.user_data
    assert (u.email, u.phone, u.gender) == ("a@b.example", "+15551234567", "f")
    assert (u.address.first_name, u.address.last_name, u.address.city) == ("Ann", SHA_HEX, "Paris")
    assert ev.params == {}  # PII never lands in params


def test_plain_user_data_wins_over_em() -> None:
    q = BASE + f"&en=x&ep.user_data.email=a%40b.example&em=tv.1~em.{SHA_HEX}~pn.{SHA_HEX}"
    u = one(gtag_hit(q)).user_data
    assert (u.email, u.phone) == ("a@b.example", SHA_HEX)


@pytest.mark.parametrize(
    "bad",
    [
        SHA_HEX[:-2] + " 1",
        SHA_HEX[:-1] + "g",
        SHA_B64URL[:-1] + "/",
        SHA_B64URL[:-1] + "!",
        SHA_B64URL + "==",
        "A" * 42,
    ],
)
def test_em_hash_must_be_exact_hex_or_base64url(bad: str) -> None:
    assert one(gtag_hit(BASE + "&en=x&em=" + quote(f"tv.1~em.{bad}", safe="~."))).user_data.email is None


def test_em_base64url_with_padding() -> None:
    assert (
        one(gtag_hit(BASE + "&en=x&em=" + quote(f"tv.1~em.{SHA_B64URL}=", safe="~."))).user_data.email
        == SHA_HEX
    )
