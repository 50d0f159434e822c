"""collect's validate_hit refuses exactly what parse_hit refuses for the JSON API and the Measurement
Protocol (same code, message and status), and for a hit it accepts returns, per event, the page URL,
consent, client id and event id of the Events transform's parse builds (collect answers /events with
those event ids, generated ones included).

JSON and MP hits are validated without building Event models (shared/tagpipe/parsing/json_api.py and mp.py
validate), so this is the proof that "a hit that gets a 2xx from collect parses in transform, with the
event ids collect answered" still holds. Inputs: the golden fixtures, the parsing property tests'
structured generators, the collect fuzz's random bytes and random JSON, wrong types, and hits built at
every limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tagpipe.models import RawHit
from tagpipe.parsing import (
    MAX_BATCH_EVENTS,
    MAX_ITEMS_PER_EVENT,
    MAX_PARAMS_PER_EVENT,
    MAX_VALUE_BYTES,
    EventSketch,
    parse_hit,
    validate_hit,
)
from tests.parsing.helpers import RECEIVED
from tests.parsing.test_properties import (
    JSON_FIELDS,
    MP_TOP,
    VALID_JSON_FIELDS,
    cookie_maps,
    header_maps,
    json_events,
    json_values,
    mp_events,
    texts,
)
from tests.unit.test_gtag_validate_equivalence import verdict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MP_QUERY = "measurement_id=G-1&api_secret=s"


def sketches_from_parse(raw: RawHit) -> list[EventSketch]:
    return [EventSketch(e.page.url, e.consent, e.client.client_id, e.event_id) for e in parse_hit(raw)]


def assert_same(raw: RawHit) -> None:
    expected = verdict(sketches_from_parse, raw)
    got = verdict(validate_hit, raw)
    assert got == expected
    assert expected[0] != "crash", expected


def json_hit(body: Any, **kw) -> RawHit:
    text = body if isinstance(body, str) else json.dumps(body)
    return RawHit(source="json", body=text, hit_id="j", received_at=RECEIVED, **kw)


def mp_hit(body: Any, query: str = MP_QUERY, **kw) -> RawHit:
    text = body if isinstance(body, str) else json.dumps(body)
    return RawHit(source="mp", query=query, body=text, hit_id="m", received_at=RECEIVED, **kw)


def fixture_hits(source: str) -> list[RawHit]:
    hits = []
    for case in sorted((FIXTURES / source).glob("*.input.json")):
        data = {k: v for k, v in json.loads(case.read_text()).items() if not k.startswith("_")}
        hits.append(RawHit.model_validate({"source": source, **data}))
    return hits


@pytest.mark.parametrize("raw", fixture_hits("json") + fixture_hits("mp"), ids=lambda r: f"{r.source}-{r.hit_id}")
def test_golden_fixtures(raw: RawHit) -> None:
    assert_same(raw)


def test_the_fixtures_include_accepted_and_refused_hits() -> None:
    for source in ("json", "mp"):
        assert {verdict(validate_hit, raw)[0] for raw in fixture_hits(source)} == {"ok", "refused"}


def test_generated_event_ids_are_the_ones_transform_makes() -> None:
    raw = json_hit([{"event_name": "a"}, {"event_name": "b", "event_id": ""}, {"event_name": "c", "event_id": 7}])
    sketches = validate_hit(raw)
    assert [s.event_id for s in sketches] == [e.event_id for e in parse_hit(raw)]
    assert sketches[2].event_id == "7" and sketches[0].event_id != sketches[1].event_id


# --------------------------------------------------------------------------- JSON API


@SETTINGS
@given(events=st.lists(json_events, min_size=1, max_size=3), shape=st.sampled_from(["one", "list", "wrapper"]))
def test_structured_json_events(events: list, shape: str) -> None:
    body = events[0] if shape == "one" else events if shape == "list" else {"events": events}
    assert_same(json_hit(body))


@SETTINGS
@given(
    events=st.lists(
        st.fixed_dictionaries({"event_name": st.text(min_size=1, max_size=10)}, optional=VALID_JSON_FIELDS),
        min_size=1,
        max_size=3,
    ),
    headers=header_maps,
    cookies=cookie_maps,
)
def test_valid_json_events_with_odd_headers_and_cookies(events: list, headers: dict, cookies: dict) -> None:
    assert_same(json_hit(events, headers=headers, cookies=cookies))


@SETTINGS
@given(
    doc=json_values
    | st.dictionaries(st.sampled_from([*JSON_FIELDS, "event_name", "events", "name", "email"]), json_values, max_size=6)
)
def test_wrongly_typed_json(doc: Any) -> None:
    assert_same(json_hit(doc))
    assert_same(json_hit([doc, {"event_name": "ok"}]))
    assert_same(mp_hit(doc))


@SETTINGS
@given(data=st.binary(max_size=2000), source=st.sampled_from(["json", "mp"]))
def test_random_bytes_as_collect_receives_them(data: bytes, source: str) -> None:
    text = data.decode("utf-8", "surrogateescape")
    assert_same(json_hit(text) if source == "json" else mp_hit(text))


@SETTINGS
@given(body=texts, source=st.sampled_from(["json", "mp"]), query=texts)
def test_arbitrary_text(body: str, source: str, query: str) -> None:
    assert_same(json_hit(body) if source == "json" else mp_hit(body, query=query))


@settings(max_examples=60, deadline=None)
@given(
    n_events=st.integers(MAX_BATCH_EVENTS - 1, MAX_BATCH_EVENTS + 1),
    n_params=st.integers(MAX_PARAMS_PER_EVENT - 1, MAX_PARAMS_PER_EVENT + 1),
    n_items=st.integers(199, 201),
    size=st.integers(MAX_VALUE_BYTES - 1, MAX_VALUE_BYTES + 1),
    char=st.sampled_from(["x", "é"]),
    bad_at=st.integers(0, 3),
)
def test_json_limits_and_the_order_of_refusals(n_events, n_params, n_items, size, char, bad_at) -> None:
    big = char * (size // len(char.encode()))
    assert_same(json_hit([{"event_name": "e"}] * n_events))
    assert_same(json_hit({"event_name": "e", "params": {f"p{i}": 1 for i in range(n_params)}}))
    assert_same(json_hit({"event_name": "e", "items": [{"item_id": "a"}] * n_items}))
    assert_same(json_hit({"event_name": "e", "page_location": big, "params": {big: 1}}))
    # per-event refusals (empty name, timestamp, reserved param, ip_override) in different events
    bad = [
        {"event_name": " "},
        {"event_name": "e", "timestamp": "x"},
        {"event_name": "e", "params": {"value": 1}},
        {"event_name": "e", "ip_override": "999.1.1.1"},
    ]
    assert_same(json_hit([{"event_name": "ok"}, bad[bad_at], *bad]))
    assert_same(json_hit({"events": [{"event_name": "ok"}, bad[bad_at]]}))


@pytest.mark.parametrize("raw", [
    json_hit(""),
    json_hit("  "),
    json_hit("[]"),
    json_hit('{"events": []}'),
    json_hit('{"events": {}}'),
    json_hit('{"events": [], "x": 1}'),
    json_hit("[1]"),
    json_hit("42"),
    json_hit('{"event_name": NaN}'),
    json_hit("[" * 100_000 + "]" * 100_000),
    json_hit('{"event_name": "e", "email": "x"}'),
    json_hit('{"event_name": "e", "bad": 1, "worse": 2, "worst": 3}'),
    json_hit('{"event_name": "e", "timestamp": "2099-01-01T00:00:00Z"}'),
    json_hit('{"event_name": "e", "timestamp": 1e999}'),
    json_hit('{"event_name": "e", "timestamp": true}'),
    json_hit('{"event_name": "e", "ip_override": "  "}'),
    json_hit('{"event_name": "e", "ip_override": " 2001:db8::1 "}'),
    json_hit('{"event_name": "e", "params": {"exp_a": "b", "experiment_id": "x", "variant_id": "y"}}'),
    json_hit('{"event_name": "e", "params": {"k": "\\udce9"}, "page_location": "\\ud800"}'),
    json_hit('{"event_name": "caf\udce9"}'),
    json_hit('{"event_name": "e", "consent": {"ad_storage": "denied", "limited_data_use": true}}'),
    json_hit('{"event_name": "e", "event_id": ""}'),
    json_hit('{"event_name": "e", "event_id": 12}'),
    json_hit('{"event_name": "e"}', cookies={"_ga": "GA1.1.123.456"}),
    json_hit('{"event_name": "e", "client_id": "7.8"}', cookies={"_ga": "GA1.1.123.456"}),
    json_hit('{"event_name": "e", "client_id": ""}', cookies={"_ga": "GA1.1.123.456"}),
    json_hit('{"event_name": "e"}', headers={"user-agent": "caf\udce9"}),
    json_hit('{"event_name": " "}', headers={"user-agent": "caf\udce9"}),
], ids=lambda r: r.body[:40])
def test_json_edge_hits(raw: RawHit) -> None:
    assert_same(raw)


# --------------------------------------------------------------------------- Measurement Protocol


@SETTINGS
@given(
    top=st.fixed_dictionaries({}, optional={k: v for k, v in MP_TOP.items()}),
    events=st.lists(mp_events, min_size=1, max_size=3),
    client_id=st.sampled_from([{"client_id": "1"}, {"client_id": 7}, {"client_id": ""}, {}]),
    cookies=cookie_maps,
)
def test_structured_mp_bodies(top: dict, events: list, client_id: dict, cookies: dict) -> None:
    assert_same(mp_hit({**client_id, **top, "events": events}, cookies=cookies))


@SETTINGS
@given(
    top=st.dictionaries(st.sampled_from([*MP_TOP, "client_id", "events"]), json_values, max_size=5),
    events=st.lists(st.dictionaries(st.sampled_from(["name", "params", "timestamp_micros"]), json_values), max_size=2),
)
def test_wrongly_typed_mp(top: dict, events: list) -> None:
    assert_same(mp_hit({"client_id": "1", "events": events, **top}))
    assert_same(mp_hit({**top, "client_id": "1", "events": [*events, {"name": "e", "params": top}]}))


@settings(max_examples=60, deadline=None)
@given(
    n_events=st.integers(MAX_BATCH_EVENTS - 1, MAX_BATCH_EVENTS + 1),
    n_params=st.integers(MAX_PARAMS_PER_EVENT - 1, MAX_PARAMS_PER_EVENT + 1),
    n_items=st.integers(MAX_ITEMS_PER_EVENT - 1, MAX_ITEMS_PER_EVENT + 1),
    size=st.integers(MAX_VALUE_BYTES - 1, MAX_VALUE_BYTES + 1),
    char=st.sampled_from(["x", "é"]),
    query=st.sampled_from([MP_QUERY, "firebase_app_id=1%3Aab&api_secret=s", "measurement_id=%FF\udce9", ""]),
)
@example(n_events=1, n_params=1, n_items=1, size=1, char="x", query="measurement_id=%FF\udce9")
def test_mp_limits(n_events, n_params, n_items, size, char, query) -> None:
    big = char * (size // len(char.encode()))
    assert_same(mp_hit({"client_id": "1", "events": [{"name": "e"}] * n_events}, query=query))
    params = {f"p{i}": 1 for i in range(n_params)}
    assert_same(mp_hit({"client_id": "1", "events": [{"name": "e", "params": params}]}, query=query))
    items = [{"item_id": "a"}] * n_items
    assert_same(mp_hit({"client_id": "1", "events": [{"name": "e", "params": {"items": items}}]}, query=query))
    assert_same(mp_hit({"client_id": big, "events": [{"name": big, "params": {big: big}}]}, query=query))


@pytest.mark.parametrize("raw", [
    mp_hit(""),
    mp_hit("[]"),
    mp_hit('{"events": [{"name": "e"}]}'),
    mp_hit('{"app_instance_id": "a", "events": [{"name": "e"}]}'),
    mp_hit('{"client_id": "1", "events": []}'),
    mp_hit('{"client_id": "1", "events": [1]}'),
    mp_hit('{"client_id": "1", "events": [{"name": " "}]}'),
    mp_hit('{"client_id": "1", "non_personalized_ads": true, "consent": {"ad_user_data": "granted"}, "events": [{"name": "e"}, {"name": "f"}]}'),
    mp_hit('{"client_id": "1", "non_personalized_ads": 1, "events": [{"name": "e"}]}'),
    mp_hit('{"client_id": "1", "events": [{"name": "e", "params": {"event_id": ""}}, {"name": "f", "params": {"event_id": 3}}]}'),
    mp_hit('{"client_id": "1", "events": [{"name": "e", "params": {"engagement_time_msec": "1e308"}}]}'),
    mp_hit('{"client_id": "1", "events": [{"name": "e", "params": {"items": [{"index": 1.5}]}}]}'),
    mp_hit('{"client_id": "1", "events": [{"name": "e", "params": {"page_location": "https://a.example/?fbclid=F"}}]}', cookies={"_fbc": "fb.1.1.old"}),
    mp_hit('{"client_id": "1", "timestamp_micros": 1, "events": [{"name": "e"}]}'),
    mp_hit('{"client_id": "1", "events": [{"name": "e"}]}', headers={"user-agent": "caf\udce9"}),
    mp_hit('{"client_id": "\\udce9", "events": [{"name": "e"}]}'),
], ids=lambda r: r.body[:40])
def test_mp_edge_hits(raw: RawHit) -> None:
    assert_same(raw)
