"""Rules every source shares: ids, client context, cookies, click ids, time, limits."""

from __future__ import annotations

import uuid

import pytest

from tagpipe.parsing import MAX_BATCH_EVENTS, event_id_for, hit_fingerprint, parse_hit
from tagpipe.parsing._common import EVENT_ID_NAMESPACE, geo_from_headers, hostname_of, parse_number

from .helpers import BASE, RECEIVED, UA, gtag_hit, json_hit, mp_hit, one, refused


def test_event_uid_hit_id_and_source() -> None:
    events = parse_hit(gtag_hit(body="en=a\nen=b", hit_id="abc"))
    assert [e.event_uid for e in events] == ["abc:0", "abc:1"]
    assert {e.hit_id for e in events} == {"abc"}
    assert {e.source for e in events} == {"gtag"}


@pytest.mark.parametrize("hit_id", ["h1", "0f3c", "hit-é", "x" * 200])
def test_generated_event_id_is_uuid5_of_hit_and_index(hit_id: str) -> None:
    for i in range(3):
        assert event_id_for(hit_id, i) == str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{hit_id}:{i}"))


def test_generated_event_id_is_stable_across_replays_and_flagged() -> None:
    raw = gtag_hit(body="en=a\nen=b")
    first, second = parse_hit(raw), parse_hit(raw.model_copy())
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert first[0].event_id != first[1].event_id
    assert all(e.event_id_generated for e in first)
    assert first[0].event_id == event_id_for(hit_fingerprint(raw), 0)
    # a retry or replay is a new request (new hit_id, later arrival) with the same content: the same ids
    again = parse_hit(raw.model_copy(update={"hit_id": "h2", "received_at": raw.received_at + 30}))
    assert [e.event_id for e in again] == [e.event_id for e in first]
    other = parse_hit(raw.model_copy(update={"body": "en=a\nen=c"}))
    assert other[0].event_id != first[0].event_id  # its own content, its own ids (index 0 is not enough)


def test_event_id_from_each_source() -> None:
    assert one(gtag_hit(BASE + "&en=x&ep.event_id=E1")).event_id == "E1"
    ev = one(mp_hit({"client_id": "1.2", "events": [{"name": "x", "params": {"event_id": "E2"}}]}))
    assert (ev.event_id, ev.event_id_generated) == ("E2", False)
    assert one(json_hit({"event_name": "x", "event_id": 77})).event_id == "77"
    assert "event_id" not in one(gtag_hit(BASE + "&en=x&ep.event_id=E1")).params


def test_client_ip_and_user_agent_from_the_request() -> None:
    ev = one(gtag_hit(client_ip="198.51.100.1", headers={"user-agent": UA}))
    assert (ev.client.ip, ev.client.user_agent) == ("198.51.100.1", UA)


@pytest.mark.parametrize("param", ["_uip", "uip"])
def test_gtag_ip_override(param: str) -> None:
    ev = one(gtag_hit(BASE + f"&en=x&{param}=2001:db8::7", client_ip="10.0.0.1"))
    assert ev.client.ip == "2001:db8::7"


def test_ip_overrides_must_be_addresses() -> None:
    refused(gtag_hit(BASE + "&en=x&_uip=not-an-ip"), "invalid_field")
    refused(
        mp_hit({"client_id": "1", "ip_override": "jane@example.com", "events": [{"name": "x"}]}),
        "invalid_field",
    )
    err = refused(json_hit({"event_name": "x", "ip_override": "jane@example.com"}), "invalid_field")
    assert "jane" not in err.message and "ip_override" in err.message


def test_json_and_mp_ip_override() -> None:
    assert (
        one(json_hit({"event_name": "x", "ip_override": " 192.0.2.1 "}, client_ip="10.0.0.1")).client.ip
        == "192.0.2.1"
    )
    body = {"client_id": "1", "ip_override": "192.0.2.2", "events": [{"name": "x"}]}
    assert one(mp_hit(body, client_ip="10.0.0.1")).client.ip == "192.0.2.2"


def test_json_user_agent_override() -> None:
    ev = one(json_hit({"event_name": "x", "user_agent": "Custom/1"}, headers={"user-agent": UA}))
    assert ev.client.user_agent == "Custom/1"


def test_geo_headers() -> None:
    assert geo_from_headers(
        {"x-client-geo-country": "DE", "x-client-geo-region": "DEBY", "x-client-geo-city": "Munich"}
    ) == {
        "country": "DE",
        "region": "DEBY",
        "city": "Munich",
    }
    assert geo_from_headers({"cf-ipcountry": "XX", "x-appengine-country": "ZZ"}) == {}
    assert geo_from_headers({"cf-ipcountry": "FR", "x-appengine-country": "US"}) == {"country": "US"}  # order
    assert geo_from_headers({"x-client-geo-location": "US,Mountain View"}) == {
        "country": "US",
        "city": "Mountain View",
    }
    assert geo_from_headers({"x-appengine-city": "?"}) == {}
    ev = one(gtag_hit(headers={"x-appengine-country": "NL", "x-appengine-city": "amsterdam"}))
    assert ev.client.geo == {"country": "NL", "city": "amsterdam"}


def test_sensitive_headers_are_not_copied_into_events() -> None:
    ev = one(
        gtag_hit(headers={"user-agent": UA, "authorization": "Bearer x", "cookie": "a=b", "x-api-key": "k"})
    )
    assert ev.headers == {"user-agent": UA}


def test_cookies() -> None:
    cookies = {
        "_fbp": "fb.1.1700000000000.123",
        "_fbc": "fb.1.1700000000000.AbC",
        "_ga": "GA1.1.987.654",
        "_gcl_aw": "GCL.1700000000.EAIaIQ",
        "_ttp": "ttp-1",
        "ttclid": "tt-cookie",
    }
    ev = one(gtag_hit("v=2&en=x", cookies=cookies))
    assert ev.client.client_id == "987.654"
    ids = ev.click_ids
    assert (ids.fbp, ids.fbc, ids.gclid, ids.ttp, ids.ttclid) == (
        "fb.1.1700000000000.123",
        "fb.1.1700000000000.AbC",
        "EAIaIQ",
        "ttp-1",
        "tt-cookie",
    )
    assert ev.cookies == cookies


@pytest.mark.parametrize(
    ("cookie", "cid"),
    [
        ("GA1.1.987.654", "987.654"),
        ("GA1.2.1.2", "1.2"),
        ("987.654", "987.654"),
        ("junk", None),
        ("GA1.1.", None),
    ],
)
def test_ga_cookie_client_id(cookie: str, cid: str | None) -> None:
    assert one(gtag_hit("v=2&en=x", cookies={"_ga": cookie})).client.client_id == cid


def test_cid_wins_over_ga_cookie() -> None:
    assert one(gtag_hit(cookies={"_ga": "GA1.1.9.9"})).client.client_id == "111.222"


def test_url_click_ids_win_over_cookies() -> None:
    url = "https%3A%2F%2Fa.example%2Fp%3Fgclid%3DURLG%26fbclid%3DURLF%26ttclid%3DURLT%26gbraid%3DGB%26wbraid%3DWB%26dclid%3DDC%23frag"
    cookies = {"_gcl_aw": "GCL.1.COOKIEG", "ttclid": "COOKIET", "_fbc": "fb.1.1700000000000.OLD"}
    ids = one(gtag_hit(BASE + "&en=x&dl=" + url, cookies=cookies)).click_ids
    assert (ids.gclid, ids.fbclid, ids.ttclid, ids.gbraid, ids.wbraid, ids.dclid) == (
        "URLG",
        "URLF",
        "URLT",
        "GB",
        "WB",
        "DC",
    )
    assert ids.fbc is None  # the cookie's fbclid is stale: the destination builds a fresh fbc from fbclid


def test_fbc_cookie_kept_when_it_matches_the_url_fbclid_even_with_an_appendix() -> None:
    dl = "https%3A%2F%2Fa.example%2F%3Ffbclid%3DSAME"
    for fbc in ("fb.1.1700000000000.SAME", "fb.1.1700000000000.SAME.AQEAAQMB"):
        assert one(gtag_hit(BASE + "&en=x&dl=" + dl, cookies={"_fbc": fbc})).click_ids.fbc == fbc


def test_click_id_in_url_is_decoded_once_and_case_kept() -> None:
    dl = "https%3A%2F%2Fa.example%2F%3Ffbclid%3DAbC%252Fd"  # the page URL itself carries AbC%2Fd
    assert one(gtag_hit(BASE + "&en=x&dl=" + dl)).click_ids.fbclid == "AbC/d"


def test_json_explicit_click_ids_win() -> None:
    ev = one(
        json_hit(
            {"event_name": "x", "page_location": "https://a/?gclid=URL", "click_ids": {"gclid": "EXPLICIT"}}
        )
    )
    assert ev.click_ids.gclid == "EXPLICIT"


def test_debug_flags() -> None:
    assert one(gtag_hit(debug_token="tok")).debug is True
    assert one(gtag_hit(debug_token="tok")).debug_token == "tok"
    assert one(gtag_hit()).debug is False
    assert one(gtag_hit(BASE + "&en=x&_dbg=1")).debug is True
    assert one(gtag_hit(BASE + "&en=x&ep.debug_mode=true")).debug is True
    assert one(gtag_hit(BASE + "&en=x&epn.debug_mode=1")).debug is True
    assert "debug_mode" not in one(gtag_hit(BASE + "&en=x&ep.debug_mode=true")).params
    assert (
        one(mp_hit({"client_id": "1", "events": [{"name": "x", "params": {"debug_mode": 1}}]})).debug is True
    )
    assert one(json_hit({"event_name": "x", "debug_mode": True})).debug is True


def test_gtag_timestamp_is_received_at() -> None:
    assert one(gtag_hit(received_at=1_700_000_123.456)).timestamp == 1_700_000_123.456


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_735_731_000, 1_735_731_000.0),
        (1_735_731_000.25, 1_735_731_000.25),
        (1_735_731_000_250, 1_735_731_000.25),  # ms
        ("1735731000", 1_735_731_000.0),
        ("2024-12-31T23:59:30Z", 1_735_689_570.0),
        ("2024-12-31T23:59:30+01:00", 1_735_685_970.0),
        ("2024-12-31T23:59:30", 1_735_689_570.0),  # naive ISO: UTC
        ("2024-12-31T23:59:30.5z", 1_735_689_570.5),
    ],
)
def test_json_timestamps(value: object, expected: float) -> None:
    assert one(json_hit({"event_name": "x", "timestamp": value})).timestamp == expected


@pytest.mark.parametrize(
    "value", [True, "yesterday", "", 12, -5, 1e300, RECEIVED + 2 * 86400, [1], {"a": 1}, 10**400]
)
def test_json_bad_timestamps(value: object) -> None:
    refused(json_hit({"event_name": "x", "timestamp": value}), "invalid_timestamp")


def test_json_timestamp_missing_is_received_at() -> None:
    assert one(json_hit({"event_name": "x"})).timestamp == RECEIVED


def test_json_age_ms_dates_the_event_back_from_receipt() -> None:
    """A tag resending from its outbox says how old the event is; the device's clock never counts."""
    assert one(json_hit({"event_name": "x", "age_ms": 90_000})).timestamp == RECEIVED - 90.0
    assert one(json_hit({"event_name": "x", "age_ms": "25"})).timestamp == RECEIVED - 0.025
    assert one(json_hit({"event_name": "x", "age_ms": 0})).timestamp == RECEIVED


@pytest.mark.parametrize(("extra", "code"), [
    ({"age_ms": -1}, "invalid_timestamp"),
    ({"age_ms": 7 * 86_400_000 + 1}, "invalid_timestamp"),  # older than Meta's 7-day window
    ({"age_ms": 5, "timestamp": RECEIVED}, "invalid_timestamp"),
    ({"age_ms": "soon"}, "invalid_field"),
])
def test_json_bad_age_ms(extra: dict, code: str) -> None:
    assert "age_ms" in refused(json_hit({"event_name": "x", **extra}), code).message


def test_now_is_the_reference_for_future_timestamps() -> None:
    raw = json_hit({"event_name": "x", "timestamp": RECEIVED + 3 * 86400})
    refused(raw, "invalid_timestamp")
    assert one(raw, now=RECEIVED + 3 * 86400).timestamp == RECEIVED + 3 * 86400


def test_mp_timestamps() -> None:
    body = {
        "client_id": "1",
        "timestamp_micros": 1_735_731_000_500_000,
        "events": [{"name": "a"}, {"name": "b", "timestamp_micros": "1735731001000000"}],
    }
    a, b = parse_hit(mp_hit(body))
    assert (a.timestamp, b.timestamp) == (1_735_731_000.5, 1_735_731_001.0)
    assert one(mp_hit({"client_id": "1", "events": [{"name": "a"}]})).timestamp == RECEIVED
    refused(
        mp_hit({"client_id": "1", "timestamp_micros": 1_735_731_000, "events": [{"name": "a"}]}),
        "invalid_timestamp",
    )  # seconds, not micros
    refused(
        mp_hit({"client_id": "1", "timestamp_micros": "soon", "events": [{"name": "a"}]}), "invalid_timestamp"
    )
    refused(
        mp_hit({"client_id": "1", "timestamp_micros": True, "events": [{"name": "a"}]}), "invalid_timestamp"
    )


def test_parse_number() -> None:
    assert parse_number("3") == 3 and isinstance(parse_number("3"), int)
    assert parse_number("-3") == -3
    assert parse_number("30.03") == 30.03
    assert parse_number("1e+21") == 1e21
    for bad in ("NaN", "inf", "-Infinity", "abc", "", "9" * 5000):
        assert parse_number(bad) is None


def test_hostname_of() -> None:
    assert hostname_of("https://Shop.Example.com:8443/p?q#f") == "shop.example.com"
    assert hostname_of("https://user:pw@a.example/x") == "a.example"
    assert hostname_of("http://[::1]:8080/") == "[::1]"
    assert hostname_of("/relative") is None


def test_batch_limits_for_mp_and_json() -> None:
    events = [{"name": "e"}] * (MAX_BATCH_EVENTS + 1)
    refused(mp_hit({"client_id": "1", "events": events}), "too_many_events", 413)
    refused(json_hit([{"event_name": "e"}] * (MAX_BATCH_EVENTS + 1)), "too_many_events", 413)
    assert len(parse_hit(json_hit([{"event_name": "e"}] * MAX_BATCH_EVENTS))) == MAX_BATCH_EVENTS


def test_lone_surrogates_are_invalid_utf8_for_every_source() -> None:
    bad = b"en=\xff".decode("utf-8", "surrogateescape")
    refused(gtag_hit(body=bad), "invalid_utf8")
    refused(gtag_hit(query=BASE + "&en=" + bad), "invalid_utf8")
    refused(mp_hit('{"client_id": "' + bad + '"}'), "invalid_utf8")
    refused(json_hit('{"event_name": "' + bad + '"}'), "invalid_utf8")


def test_unsupported_source() -> None:
    raw = gtag_hit().model_copy(update={"source": "ftp"})
    refused(raw, "unsupported_source")


def test_lone_surrogates_in_headers_or_cookies_are_invalid_utf8() -> None:
    bad = b"\xff".decode("utf-8", "surrogateescape")
    refused(gtag_hit(headers={"user-agent": bad}), "invalid_utf8")
    refused(gtag_hit(cookies={"_ga": bad}), "invalid_utf8")
    assert one(gtag_hit(headers={"user-agent": "Büro/1.0"})).client.user_agent == "Büro/1.0"
