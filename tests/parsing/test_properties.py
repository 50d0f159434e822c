"""Property tests: parse_hit on arbitrary input raises InvalidInput and nothing else, deterministically."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote, unquote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagpipe.errors import InvalidInput
from tagpipe.models import RawHit
from tagpipe.parsing import parse_hit
from tagpipe.parsing.gtag import parse_item, percent_decode
from tagpipe.parsing.json_api import RESERVED_PARAMS

from .helpers import RECEIVED

# PARSING_EXAMPLES=20000 pytest tests/parsing/test_properties.py for a deep run
SETTINGS = settings(
    max_examples=int(os.environ.get("PARSING_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# text as a server could hand it to us: any unicode, or bytes decoded several ways
raw_bytes = st.binary(max_size=400)
texts = st.one_of(
    st.text(max_size=400),
    raw_bytes.map(lambda b: b.decode("utf-8", "replace")),
    raw_bytes.map(lambda b: b.decode("latin-1")),
    raw_bytes.map(lambda b: b.decode("utf-8", "surrogateescape")),
)
header_maps = st.dictionaries(
    st.sampled_from(
        [
            "user-agent",
            "x-client-geo-country",
            "cf-ipcountry",
            "x-client-geo-location",
            "x-appengine-city",
            "authorization",
        ]
    ),
    st.text(max_size=30),
    max_size=4,
)
cookie_maps = st.dictionaries(
    st.sampled_from(["_ga", "_fbp", "_fbc", "_gcl_aw", "_ttp", "ttclid"]), st.text(max_size=40), max_size=4
)


def check(raw: RawHit) -> None:
    try:
        first = [e.model_dump(mode="json") for e in parse_hit(raw)]
    except InvalidInput as e:
        assert e.code and e.message and e.status in (400, 413)
        try:
            parse_hit(raw)
        except InvalidInput as again:
            assert (again.code, again.message) == (e.code, e.message)
        else:
            raise AssertionError("the same hit parsed the second time") from None
        return
    json.dumps(first)  # serialisable
    assert [e.model_dump(mode="json") for e in parse_hit(raw)] == first


@SETTINGS
@given(
    source=st.sampled_from(["gtag", "mp", "json"]),
    query=texts,
    body=texts,
    headers=header_maps,
    cookies=cookie_maps,
    ip=st.none() | st.text(max_size=20),
)
def test_arbitrary_text_only_raises_invalid_input(
    source: str, query: str, body: str, headers: dict, cookies: dict, ip: str | None
) -> None:
    check(
        RawHit(
            source=source,
            query=query,
            body=body,
            headers=headers,
            cookies=cookies,
            client_ip=ip,
            hit_id="p",
            received_at=RECEIVED,
        )
    )


# --------------------------------------------------------------------------- structured gtag fuzz

GTAG_KEYS = [
    "tid", "cid", "uid", "sid", "sct", "_et", "ul", "sr", "dl", "dr", "dt", "dh", "en", "cu", "gcs", "gcd",
    "npa", "dma", "dma_cps", "_dbg", "uaa", "uab", "uafvl", "uamb", "uam", "uap", "uapv", "uaw", "em",
    "pr1", "pr2", "pr10", "ep.event_id", "ep.value", "ep.currency", "ep.transaction_id", "ep.coupon", "ep.debug_mode",
    "ep.test_event_code", "ep.experiment_id", "ep.variant_id", "ep.exp_x", "ep.user_data.email",
    "ep.user_data.address.first_name", "ep.user_data.address.0.city", "epn.value", "epn.tax", "epn.x", "epn.debug_mode",
    "up.a", "upn.b", "sst.tft", "ep.", "epn.", "_p",
]  # fmt: skip
piece = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "~",
            "%",
            "%2",
            "%C3%A9",
            "%FF",
            "k0",
            "v0",
            "k12",
            "va",
            "id",
            "pr",
            "tv.1",
            "em.",
            ".",
            "+",
            "%25",
            "|",
            ";",
        ]
        + [
            "1",
            "2",
            "G1",
            "13",
            "G100",
            "13p3v3l3t5",
            "NaN",
            "1e400",
            "-0",
            "9" * 30,
            "e2",
            "IwAR",
            "?fbclid=",
            "&",
        ]
    ),
)
values = st.lists(piece, max_size=8).map("".join)


def encode(params: list[tuple[str, str]], raw_mode: bool) -> str:
    return "&".join(f"{k}={v if raw_mode else quote(v, safe='~|;')}" for k, v in params)


@SETTINGS
@given(
    url=st.lists(st.tuples(st.sampled_from(GTAG_KEYS), values), max_size=12),
    lines=st.lists(st.lists(st.tuples(st.sampled_from(GTAG_KEYS), values), max_size=8), max_size=4),
    raw_mode=st.booleans(),
    cookies=cookie_maps,
)
def test_structured_gtag_hits_only_raise_invalid_input(
    url: list, lines: list, raw_mode: bool, cookies: dict
) -> None:
    query = "v=2&en=e&" + encode(url, raw_mode)
    body = "\r\n".join(encode(line, raw_mode) for line in lines)
    check(RawHit(source="gtag", query=query, body=body, cookies=cookies, hit_id="g", received_at=RECEIVED))


# --------------------------------------------------------------------------- structured JSON / MP fuzz

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
ids = st.text(max_size=20) | st.integers()
numbers = st.floats(allow_nan=False) | st.integers() | st.sampled_from(["10.5", "x", "1e999"])
times = (
    st.floats(1.6e9, 1.8e9)
    | st.integers(1_600_000_000_000, 1_800_000_000_000)
    | st.sampled_from(["2024-12-31T23:59:30Z", "2024-12-31", "x"])
)
consents = st.sampled_from(["granted", "denied", "GRANTED", True, False, "maybe"])
item_keys = ["item_id", "item_name", "price", "quantity", "index", "item_variant", "discount", "custom_x"]


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Four times in five a plausible value, else any JSON value."""
    return st.one_of(valid, valid, valid, valid, json_values)


JSON_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": ids,
    "timestamp": times,
    "age_ms": st.sampled_from([0, 25, 1.5, 86_400_000, 604_800_001, -1, "30", None]),
    "client_id": ids,
    "user_id": ids,
    "session_id": ids,
    "page_location": st.sampled_from(["https://a.example/?gclid=G&fbclid=F", "x", ""]),
    "page_referrer": st.text(max_size=20),
    "page_title": st.text(max_size=20),
    "action_source": st.sampled_from(["website", "app", "physical_store", "web"]),
    "ip_override": st.sampled_from(["192.0.2.1", "2001:db8::1", "nope"]),
    "user_agent": st.text(max_size=20),
    "test_event_code": st.text(max_size=10),
    "debug_mode": st.booleans(),
    "user_data": st.dictionaries(
        st.sampled_from(["email", "phone", "first_name", "postal_code", "external_id", "bad"]),
        ids,
        max_size=4,
    ),
    "consent": st.dictionaries(
        st.sampled_from(["ad_storage", "analytics_storage", "ad_user_data", "limited_data_use"]),
        consents,
        max_size=3,
    ),
    "click_ids": st.dictionaries(
        st.sampled_from(["fbp", "fbc", "gclid", "ttclid", "ttp"]), st.text(max_size=10), max_size=3
    ),
    "value": numbers,
    "currency": st.sampled_from(["EUR", "usd", "EURO", "eu"]),
    "transaction_id": ids,
    "tax": numbers,
    "items": st.lists(st.dictionaries(st.sampled_from(item_keys), scalars, max_size=4), max_size=3),
    "params": st.dictionaries(st.text(max_size=8), scalars, max_size=4),
    "user_properties": st.dictionaries(st.text(max_size=8), scalars, max_size=3),
    "experiments": st.dictionaries(st.text(max_size=8), ids, max_size=2),
}
finite = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6)
finite_scalars = st.none() | st.booleans() | finite | st.text(max_size=20)
VALID_JSON_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "event_id": ids,
    "timestamp": st.floats(1.6e9, 1.7e9) | st.integers(1_600_000_000_000, 1_700_000_000_000),
    "client_id": ids,
    "session_id": ids,
    "page_location": st.text(max_size=30),
    "action_source": st.sampled_from(["website", "app", "physical_store", "other"]),
    "ip_override": st.ip_addresses().map(str),
    "user_data": st.dictionaries(
        st.sampled_from(["email", "phone", "first_name", "postal_code", "external_id"]),
        st.text(max_size=20),
        max_size=4,
    ),
    "consent": st.dictionaries(
        st.sampled_from(["ad_storage", "analytics_storage", "ad_user_data"]),
        st.sampled_from(["granted", "DENIED", True]),
        max_size=3,
    ),
    "click_ids": st.dictionaries(
        st.sampled_from(["fbp", "fbc", "gclid", "ttclid", "ttp"]), st.text(max_size=10), max_size=3
    ),
    "value": finite,
    "currency": st.sampled_from(["EUR", "usd"]),
    "items": st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "item_id": ids,
                "price": finite,
                "index": st.integers(0, 99),
                "custom_x": finite_scalars,
            },
        ),
        max_size=3,
    ),
    "params": st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in RESERVED_PARAMS),
        finite_scalars,
        max_size=4,
    ),
    "user_properties": st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers(), max_size=3),
    "experiments": st.dictionaries(st.text(max_size=8), ids, max_size=2),
}
json_events = st.fixed_dictionaries(
    {"event_name": mostly(st.text(min_size=1, max_size=10))},
    optional={k: mostly(v) for k, v in JSON_FIELDS.items()},
)


@SETTINGS
@given(
    events=st.lists(json_events, min_size=1, max_size=3), shape=st.sampled_from(["one", "list", "wrapper"])
)
def test_structured_json_events_only_raise_invalid_input(events: list, shape: str) -> None:
    body = events[0] if shape == "one" else events if shape == "list" else {"events": events}
    check(RawHit(source="json", body=json.dumps(body), hit_id="j", received_at=RECEIVED))


MP_TOP: dict[str, st.SearchStrategy[Any]] = {
    "app_instance_id": st.text(max_size=10),
    "user_id": ids,
    "timestamp_micros": st.integers(1_600_000_000_000_000, 1_800_000_000_000_000)
    | st.sampled_from(["1735731000000000", "x"]),
    "user_properties": st.dictionaries(
        st.text(max_size=8), st.fixed_dictionaries({"value": scalars}), max_size=3
    ),
    "consent": st.dictionaries(
        st.sampled_from(["ad_user_data", "ad_personalization"]),
        st.sampled_from(["GRANTED", "DENIED", "x"]),
        max_size=2,
    ),
    "user_data": st.fixed_dictionaries(
        {},
        optional={
            "sha256_email_address": st.lists(st.text(max_size=64), max_size=2),
            "address": st.lists(
                st.dictionaries(
                    st.sampled_from(["sha256_first_name", "city", "country"]),
                    st.text(max_size=10),
                    max_size=3,
                ),
                max_size=2,
            ),
        },
    ),
    "ip_override": st.sampled_from(["192.0.2.1", "nope"]),
    "user_location": st.dictionaries(
        st.sampled_from(["city", "region_id", "country_id"]), st.text(max_size=8), max_size=3
    ),
    "device": st.dictionaries(
        st.sampled_from(["language", "screen_resolution", "model", "operating_system"]),
        st.text(max_size=8),
        max_size=3,
    ),
    "non_personalized_ads": st.booleans(),
}
MP_PARAMS: dict[str, st.SearchStrategy[Any]] = {
    "session_id": ids,
    "engagement_time_msec": numbers,
    "page_location": st.sampled_from(["https://a.example/?gclid=G", "x"]),
    "items": st.lists(st.dictionaries(st.sampled_from(item_keys), scalars, max_size=4), max_size=3),
    "value": numbers,
    "currency": st.sampled_from(["EUR", "usd"]),
    "transaction_id": ids,
    "event_id": ids,
    "experiments": st.dictionaries(st.text(max_size=8), scalars, max_size=2),
    "debug_mode": st.booleans(),
    "x": scalars,
}
mp_events = st.fixed_dictionaries(
    {"name": mostly(st.text(min_size=1, max_size=8))},
    optional={
        "params": mostly(st.fixed_dictionaries({}, optional={k: mostly(v) for k, v in MP_PARAMS.items()})),
        "timestamp_micros": mostly(MP_TOP["timestamp_micros"]),
    },
)


@SETTINGS
@given(
    top=st.fixed_dictionaries({}, optional={k: mostly(v) for k, v in MP_TOP.items()}),
    events=st.lists(mp_events, min_size=1, max_size=3),
)
def test_structured_mp_bodies_only_raise_invalid_input(top: dict, events: list) -> None:
    body = json.dumps({"client_id": "1", **top, "events": events})
    check(
        RawHit(
            source="mp", query="measurement_id=G-1&api_secret=s", body=body, hit_id="m", received_at=RECEIVED
        )
    )


@SETTINGS
@given(
    events=st.lists(
        st.fixed_dictionaries(
            {"event_name": st.text(min_size=1, max_size=10).filter(str.strip)}, optional=VALID_JSON_FIELDS
        ),
        min_size=1,
        max_size=3,
    )
)
def test_valid_json_events_always_parse(events: list) -> None:
    parsed = parse_hit(RawHit(source="json", body=json.dumps(events), hit_id="v", received_at=RECEIVED))
    assert [e.name for e in parsed] == [e["event_name"].strip() for e in events]


@SETTINGS
@given(
    url=st.lists(st.tuples(st.sampled_from(GTAG_KEYS), st.text(max_size=20)), max_size=12),
    lines=st.lists(
        st.lists(st.tuples(st.sampled_from(GTAG_KEYS), st.text(max_size=20)), max_size=8), max_size=4
    ),
)
def test_gtag_encoded_like_gtag_always_parses(url: list, lines: list) -> None:
    """Any values, encoded the way gtag encodes them (encodeURIComponent), parse when en is set (a
    currency must be ISO 4217: tests/parsing/test_currency.py, so here it is one)."""
    url = [(k, "eur" if k in ("cu", "ep.currency") else v) for k, v in url]
    lines = [[(k, "JPY" if k in ("cu", "ep.currency") else v) for k, v in line] for line in lines]
    enc = [(k, quote(v, safe="-_.!~*'()")) for k, v in url]
    query = "v=2&en=e&" + "&".join(f"{k}={v}" for k, v in enc)
    body = "\n".join(
        "en=l&" + "&".join(f"{k}={quote(v, safe='-_.!~*()')}" for k, v in line if k != "en") for line in lines
    )
    events = parse_hit(RawHit(source="gtag", query=query, body=body, hit_id="g", received_at=RECEIVED))
    assert len(events) == max(1, len(lines))


@SETTINGS
@given(
    headers=st.dictionaries(st.text(max_size=20), texts, max_size=3),
    cookies=st.dictionaries(st.sampled_from(["_ga", "_fbc", "x"]), texts, max_size=3),
)
def test_odd_headers_and_cookies_only_raise_invalid_input(headers: dict, cookies: dict) -> None:
    check(
        RawHit(
            source="gtag",
            query="v=2&en=e",
            headers=headers,
            cookies=cookies,
            hit_id="h",
            received_at=RECEIVED,
        )
    )


# --------------------------------------------------------------------------- pieces


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(
            st.sampled_from(
                ["%", "%4", "%41", "%C3", "%A9", "%FF", "\\", "\\x41", "+", "a", "é", "%zz", "%5C"]
            ),
            max_size=10,
        ).map("".join),
    )
)
def test_percent_decode_matches_unquote_plus(s: str) -> None:
    try:
        expected = unquote_plus(s, errors="strict")
    except UnicodeDecodeError:
        try:
            percent_decode(s)
        except UnicodeDecodeError:
            return
        raise AssertionError(f"{s!r} should not decode") from None
    assert percent_decode(s) == expected


@SETTINGS
@given(st.text(max_size=200))
def test_parse_item_never_fails(text: str) -> None:
    item = parse_item(text)
    assert isinstance(item, dict)
