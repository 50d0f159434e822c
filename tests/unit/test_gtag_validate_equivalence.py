"""collect's validate_hit refuses exactly what parse_hit refuses (same code, message and status), and
what it accepts parses, with the page URL, consent and client id collect's cookie plan reads.

gtag hits are validated without building Events (shared/tagpipe/parsing/gtag.py validate), so this is the
proof that "a hit that gets a 2xx from collect parses in transform" still holds. Inputs: the golden
fixtures, the parsing property tests' generators (arbitrary text, structured gtag hits, odd headers
and cookies), the collect fuzz's random bytes, and hits built at every limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tagpipe.errors import InvalidInput
from tagpipe.models import RawHit
from tagpipe.parsing import (
    MAX_GTAG_EVENTS,
    MAX_ITEMS_PER_EVENT,
    MAX_PARAMS_PER_EVENT,
    MAX_VALUE_BYTES,
    EventSketch,
    parse_hit,
    validate_hit,
)
from tests.parsing.helpers import RECEIVED
from tests.parsing.test_properties import GTAG_KEYS, cookie_maps, encode, header_maps, texts, values

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def verdict(fn, raw: RawHit):
    try:
        result = fn(raw)
    except InvalidInput as exc:
        return ("refused", exc.code, exc.message, exc.status)
    except Exception as exc:  # noqa: BLE001 - a crash must be the same crash on both sides
        return ("crash", type(exc).__name__, str(exc))
    return ("ok", result)


def sketches_from_parse(raw: RawHit) -> list[EventSketch]:
    return [EventSketch(e.page.url, e.consent, e.client.client_id) for e in parse_hit(raw)]


def assert_same(raw: RawHit) -> None:
    expected = verdict(sketches_from_parse, raw)
    got = verdict(validate_hit, raw)
    assert got == expected
    assert expected[0] != "crash", expected


def gtag(query: str = "", body: str = "", **kw) -> RawHit:
    return RawHit(source="gtag", query=query, body=body, hit_id="h", received_at=RECEIVED, **kw)


@pytest.mark.parametrize("case", sorted((FIXTURES / "gtag").glob("*.input.json")), ids=lambda p: p.name)
def test_golden_fixtures(case: Path) -> None:
    data = {k: v for k, v in json.loads(case.read_text()).items() if not k.startswith("_")}
    assert_same(RawHit.model_validate(data))


def test_the_fixtures_include_accepted_and_refused_hits() -> None:
    verdicts = set()
    for case in (FIXTURES / "gtag").glob("*.input.json"):
        data = {k: v for k, v in json.loads(case.read_text()).items() if not k.startswith("_")}
        verdicts.add(verdict(validate_hit, RawHit.model_validate(data))[0])
    assert verdicts == {"ok", "refused"}


@SETTINGS
@given(query=texts, body=texts, headers=header_maps, cookies=cookie_maps, ip=st.none() | st.text(max_size=20))
def test_arbitrary_text(query, body, headers, cookies, ip) -> None:
    assert_same(gtag(query, body, headers=headers, cookies=cookies, client_ip=ip))


@SETTINGS
@given(
    url=st.lists(st.tuples(st.sampled_from(GTAG_KEYS + ["_uip", "uip", "v"]), values), max_size=12),
    lines=st.lists(st.lists(st.tuples(st.sampled_from(GTAG_KEYS + ["_uip", "v"]), values), max_size=8), max_size=4),
    raw_mode=st.booleans(),
    cookies=cookie_maps,
    prefix=st.sampled_from(["v=2&en=e&", "v=2&", "v=1&en=e&", "en=e&", ""]),
)
def test_structured_gtag_hits(url, lines, raw_mode, cookies, prefix) -> None:
    query = prefix + encode(url, raw_mode)
    body = "\r\n".join(encode(line, raw_mode) for line in lines)
    assert_same(gtag(query, body, cookies=cookies))


@SETTINGS
@given(data=st.binary(max_size=2000), as_body=st.booleans())
def test_random_bytes_as_collect_receives_them(data, as_body) -> None:
    text = data.decode("utf-8", "surrogateescape")
    if as_body:
        assert_same(gtag("v=2&tid=G-X", text))
    else:
        assert_same(gtag(quote_from_bytes(data, safe="&=.~")))


@SETTINGS
@given(
    headers=st.dictionaries(st.text(max_size=20), texts, max_size=3),
    cookies=st.dictionaries(st.sampled_from(["_ga", "_fbc", "x"]), texts, max_size=3),
)
def test_odd_headers_and_cookies(headers, cookies) -> None:
    assert_same(gtag("v=2&en=e", headers=headers, cookies=cookies))


@settings(max_examples=120, deadline=None)
@given(
    items=st.integers(MAX_ITEMS_PER_EVENT - 2, MAX_ITEMS_PER_EVENT + 2),
    empty=st.integers(0, 3),
    lines=st.integers(0, 2),
    uip=st.sampled_from(["", "203.0.113.9", " 2001:db8::1 ", "999.1.1.1", "x"]),
    version=st.sampled_from(["2", "1", None]),
    name=st.sampled_from(["e", " ", ""]),
)
@example(items=MAX_ITEMS_PER_EVENT + 1, empty=0, lines=1, uip="x", version="2", name="e")
def test_limits_and_the_order_of_refusals(items, empty, lines, uip, version, name) -> None:
    params = [f"pr{i}=id{i}" for i in range(1, items + 1)] + [f"pr{1000 + i}=" for i in range(empty)]
    if version is not None:
        params.insert(0, f"v={version}")
    params += [f"en={quote(name)}", f"_uip={quote(uip)}"]
    query = "&".join(params)
    assert_same(gtag(query))
    assert_same(gtag("v=2&tid=G-X", "\n".join([query] * lines)))


@pytest.mark.parametrize("raw", [
    gtag("v=2&en=e", "\n".join(["en=x"] * (MAX_GTAG_EVENTS + 1))),
    gtag("v=2&en=e", "\n".join(["en=x"] * MAX_GTAG_EVENTS)),
    gtag("v=2&en=e&" + "&".join(f"p{i}=1" for i in range(MAX_PARAMS_PER_EVENT))),
    gtag("v=2&" + "&".join(f"p{i}=1" for i in range(MAX_PARAMS_PER_EVENT - 2)), "en=a&q=1\nen=b&q=1&r=2"),
    gtag("v=2&en=e&dl=" + "x" * (MAX_VALUE_BYTES + 1)),
    gtag("v=2&en=e&dl=" + "%C3%A9" * (MAX_VALUE_BYTES // 2 + 1)),
    gtag("v=2&en=e&dl=%FF"),
    gtag("v=2&en=e", "en=a&gcs=G100&gcd=13p3v3l3t5\nen=b&gcs=G111&npa=1&dma=1&dl=https%3A%2F%2Fs.example%2F%3Ffbclid%3DX"),
    gtag("v=2&en=e", cookies={"_ga": "GA1.1.123.456"}),
    gtag("v=2&en=e&cid=7.8", cookies={"_ga": "GA1.1.123.456"}),
    gtag("v=2&en=e", headers={"user-agent": "caf\udce9"}),
], ids=lambda r: f"{r.query[:30]}|{r.body[:20]}")
def test_edge_hits(raw) -> None:
    assert_same(raw)
