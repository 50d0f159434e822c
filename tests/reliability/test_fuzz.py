"""Bad input at every collect endpoint: always a 4xx with a JSON reason and a failed-event record,
never a 5xx, never a crash. Property-based (hypothesis) plus the classic nasties."""

from __future__ import annotations

import json
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tagpipe.config import load_config
from tagpipe.ops.local import collect_app
from tagpipe.runtime import build_runtime, set_runtime

COUNTS = {"inputs": 0, "crashes": 0}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    cfg = tmp / "tagpipe.toml"
    cfg.write_text(f'[storage]\ndir = "{tmp / "data"}"\n\n[destinations.dry_run]\ntype = "log"\n')
    rt = build_runtime(load_config(cfg))
    set_runtime(rt)
    with TestClient(collect_app(), raise_server_exceptions=True) as c:
        c.rt = rt
        yield c
    set_runtime(None)
    rt.close()


ENDPOINTS = [("POST", "/events"), ("POST", "/mp/collect?measurement_id=G-X&api_secret=s"),
             ("POST", "/g/collect"), ("GET", "/g/collect")]


def check(response) -> None:
    COUNTS["inputs"] += 1
    if response.status_code >= 500:
        COUNTS["crashes"] += 1
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["ok"] is False and body["error"] and body["reason"]


def failures(client) -> int:
    return client.rt.store.query("SELECT COUNT(*) FROM failed_events WHERE stage = 'collect'")[0][0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2000), endpoint=st.sampled_from(ENDPOINTS))
def test_random_bytes(client, body, endpoint):
    method, path = endpoint
    if method == "GET":
        r = client.get(path + "?" + quote_from_bytes(body, safe="&=.~"))
    else:
        r = client.post(path, content=body, headers={"content-type": "application/json"})
    check(r)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=json_values | st.dictionaries(st.sampled_from(
    ["event_name", "event_id", "value", "items", "user_data", "params", "timestamp", "consent", "events",
     "client_id", "currency", "click_ids"]), json_values, max_size=8))
def test_wrongly_typed_json(client, doc):
    for path in ("/events", "/mp/collect?measurement_id=G-X&api_secret=s"):
        check(client.post(path, content=json.dumps(doc), headers={"content-type": "application/json"}))


@pytest.mark.parametrize("name,method,path,kwargs,status", [
    ("invalid utf-8", "POST", "/events", {"content": b'{"event_name": "\xff\xfe"}'}, 400),
    ("huge body", "POST", "/events", {"content": b"[" + b'{"event_name":"a"},' * 200_000 + b"]"}, 413),
    ("deep json", "POST", "/events", {"content": b"[" * 100_000 + b"]" * 100_000}, 400),
    ("deep json object", "POST", "/events", {"content": b'{"a":' * 5000 + b"1" + b"}" * 5000}, 400),
    ("10k params", "POST", "/g/collect?v=2&tid=G-X&cid=1.2",
     {"content": "en=x&" + "&".join(f"ep.p{i}=v" for i in range(10_000))}, 413),
    ("10k lines", "POST", "/g/collect?v=2&tid=G-X&cid=1.2", {"content": "\n".join(["en=x"] * 10_000)}, 413),
    ("wrong version", "GET", "/g/collect?v=1&tid=G-X&en=page_view", {}, 400),
    ("no event name", "GET", "/g/collect?v=2&tid=G-X&cid=1.2", {}, 400),
    ("number as event", "POST", "/events", {"json": 42}, 400),
    ("empty events", "POST", "/events", {"json": {"events": []}}, 400),
    ("NaN value", "POST", "/events", {"content": b'{"event_name":"purchase","value":NaN}'}, 400),
])
def test_classic_bad_inputs(client, name, method, path, kwargs, status):
    from tagpipe.pipeline import collect

    collect.collector().throttled = collect.ThrottledTally()  # a new window, not the tail of the fuzzing's flood
    before = failures(client)
    r = client.request(method, path, **kwargs)
    check(r)
    assert r.status_code == status, (name, r.status_code, r.text)
    assert failures(client) == before + 1  # recorded, not dropped silently


def test_header_injection_is_not_reflected(client):
    r = client.post("/events", json={"event_name": "x\r\nSet-Cookie: evil=1"},
                    headers={"origin": "https://shop.example\r\nX-Evil: 1".replace("\r\n", " ")})
    check(r)
    assert "evil" not in {k.lower() for k in r.headers} and "set-cookie" not in {
        k.lower() for k in r.headers if r.headers[k].startswith("evil")}


def test_summary_no_crashes():
    print(f"fuzz: {COUNTS['inputs']} inputs, {COUNTS['crashes']} crashes")
    assert COUNTS["crashes"] == 0
