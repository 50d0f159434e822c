"""The Segment source: write-key auth as Segment documents it, the clock-skew rule, gzip bodies, the limits, and
collect's answers and records for good and bad calls (a real Collector on a real local queue and store). The
golden mapping is tests/parsing/test_segment_golden.py; the real SDKs drive a running collect in
tests/e2e/test_segment_sdks.py and tests/sitetag/test_segment_analytics_next.py."""

from __future__ import annotations

import base64
import gzip
import json
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tagpipe.config import Config, PathsConfig, StorageConfig
from tagpipe.errors import InvalidInput
from tagpipe.models import RawHit
from tagpipe.parsing import parse_hit, segment
from tagpipe.pipeline.collect import Collector
from tagpipe.runtime import Runtime
from tagpipe.storage.sqlite import SqliteStore
from tagpipe.transport.local import LocalBus

RECEIVED = 1_735_732_000.0  # 2025-01-01T11:46:40Z
KEY = "wk_test_0123456789abcdef"  # a test value, never a real source's


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def basic(key: str) -> str:
    """[http] "taking a Segment source Write Key ... as the username, adding a colon ... base64 encoding"."""
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def hit(body: object, path: str = "/v1/batch", **kw) -> RawHit:
    kw.setdefault("hit_id", "sg")
    kw.setdefault("received_at", RECEIVED)
    return RawHit(source="segment", path=path, body=body if isinstance(body, str) else json.dumps(body), **kw)


def one(raw: RawHit):
    (event,) = parse_hit(raw)
    return event


def refused(raw: RawHit, code: str, status: int = 400) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_hit(raw)
    assert (info.value.code, info.value.status) == (code, status), info.value.message
    return info.value


# --------------------------------------------------------------------------- write key


def test_the_documented_basic_auth_example_is_the_write_key_abc123() -> None:
    # [http]: "'abc123:' becomes 'YWJjMTIzOg=='"
    assert basic("abc123") == "Basic YWJjMTIzOg=="
    body = '{"userId":"u1","event":"x"}'
    assert segment.authorize({"authorization": "Basic YWJjMTIzOg=="}, body, ["abc123"], "SEGMENT_WRITE_KEYS") == body


@pytest.mark.parametrize("headers, body, why", [
    ({}, {"userId": "u1", "event": "x"}, "no write key"),
    ({"authorization": basic("someone-elses")}, {"userId": "u1", "event": "x"}, "is not one of"),
    ({}, {"userId": "u1", "event": "x", "writeKey": "someone-elses"}, "is not one of"),
    ({"authorization": "Bearer " + KEY}, {"userId": "u1", "event": "x"}, "no write key"),
    ({"authorization": "Basic %%%not-base64"}, {"userId": "u1", "event": "x"}, "no write key"),
])  # fmt: skip
def test_a_wrong_or_missing_write_key_is_refused_401(headers, body, why) -> None:
    with pytest.raises(InvalidInput) as info:
        segment.authorize(headers, json.dumps(body), [KEY, "other"], "SEGMENT_WRITE_KEYS")
    assert (info.value.code, info.value.status) == ("unauthorized", 401) and why in info.value.message
    assert KEY not in info.value.message and "someone-elses" not in info.value.message


def test_without_configured_keys_every_call_is_refused_naming_the_variable() -> None:
    with pytest.raises(InvalidInput) as info:
        segment.authorize({"authorization": basic(KEY)}, "{}", [], "MY_SEGMENT_KEYS")
    assert info.value.status == 401 and "MY_SEGMENT_KEYS" in info.value.message


def test_the_write_key_in_the_body_is_accepted_and_removed_from_what_is_queued() -> None:
    body = json.dumps({"batch": [{"type": "track", "event": "x", "userId": "u", "writeKey": KEY}], "writeKey": KEY})
    queued = segment.authorize({}, body, [KEY], "SEGMENT_WRITE_KEYS")
    assert KEY not in queued and json.loads(queued) == {"batch": [{"type": "track", "event": "x", "userId": "u"}]}


def test_a_key_without_the_colon_is_taken_too() -> None:
    # [http]: "encoding the write key without a colon might work due to backward compatibility"
    header = "Basic " + base64.b64encode(KEY.encode()).decode()
    assert segment.authorize({"authorization": header}, "{}", [KEY], "SEGMENT_WRITE_KEYS") == "{}"


# --------------------------------------------------------------------------- clock skew


@pytest.mark.parametrize("skew", [-3 * 86400.0, -90.0, 0.0, 45.5, 10 * 86400.0])
def test_the_client_clock_is_corrected_by_sent_at_against_received_at(skew) -> None:
    # [common] timestamp = receivedAt - (sentAt - originalTimestamp): the event happened 12 s before it was sent,
    # whatever the device's clock said
    client_now = RECEIVED + skew
    message = {"type": "track", "event": "x", "userId": "u", "timestamp": iso(client_now - 12), "sentAt": iso(client_now)}
    assert one(hit({"batch": [message]})).timestamp == pytest.approx(RECEIVED - 12)
    without = {k: v for k, v in message.items() if k != "sentAt"}  # the node and python SDKs: one for the batch
    assert one(hit({"batch": [without], "sentAt": iso(client_now)})).timestamp == pytest.approx(RECEIVED - 12)


def test_rudderstacks_original_timestamp_is_the_call_time_and_a_message_sent_at_beats_the_batchs() -> None:
    message = {"type": "track", "event": "x", "userId": "u", "originalTimestamp": iso(RECEIVED - 3600 - 30),
               "timestamp": iso(RECEIVED - 999), "sentAt": iso(RECEIVED - 3600)}  # fmt: skip
    body = {"batch": [message], "sentAt": iso(RECEIVED + 500)}
    assert one(hit(body)).timestamp == pytest.approx(RECEIVED - 30)


def test_without_sent_at_the_timestamp_stands_and_without_any_time_it_is_the_arrival() -> None:
    past = RECEIVED - 5 * 86400
    assert one(hit({"userId": "u", "event": "x", "timestamp": iso(past)}, "/v1/track")).timestamp == pytest.approx(past)
    assert one(hit({"userId": "u", "event": "x"}, "/v1/track")).timestamp == RECEIVED
    assert one(hit({"userId": "u", "event": "x", "sentAt": iso(RECEIVED + 7)}, "/v1/track")).timestamp == RECEIVED


def test_a_corrected_time_still_far_in_the_future_is_refused() -> None:
    message = {"userId": "u", "event": "x", "timestamp": iso(RECEIVED + 3 * 86400), "sentAt": iso(RECEIVED)}
    refused(hit(message, "/v1/track"), "invalid_timestamp")
    refused(hit({"userId": "u", "event": "x", "timestamp": "yesterday"}, "/v1/track"), "invalid_timestamp")


# --------------------------------------------------------------------------- mapping rules


def test_the_one_letter_paths_of_analytics_js_are_the_same_calls() -> None:
    message = {"userId": "u", "event": "Product Added", "messageId": "m1", "properties": {"product_id": "p1"}}
    assert one(hit(message, "/v1/t")).model_dump(exclude={"source"}) == one(hit(message, "/v1/track")).model_dump(
        exclude={"source"})
    assert one(hit({"userId": "u"}, "/v1/p")).name == "page_view"
    assert one(hit({"userId": "u", "traits": {"email": "a@b.example"}}, "/v1/i")).user_data.email == "a@b.example"


def test_message_id_is_the_event_id_so_a_retry_with_a_new_sent_at_is_the_same_event() -> None:
    message = {"type": "track", "event": "Order Completed", "userId": "u", "messageId": "node-next-1-abc",
               "properties": {"order_id": "o1", "total": 5, "currency": "EUR"}}
    first = one(hit({"batch": [message], "sentAt": iso(RECEIVED - 1)}, hit_id="h1"))
    retry = one(hit({"batch": [message], "sentAt": iso(RECEIVED + 3)}, hit_id="h2", received_at=RECEIVED + 4))
    assert first.event_id == retry.event_id == "node-next-1-abc" and not first.event_id_generated
    assert (first.name, first.ecommerce.transaction_id, first.ecommerce.value) == ("purchase", "o1", 5.0)


def test_the_request_ip_and_agent_are_the_users_only_for_calls_from_the_device() -> None:
    server = {"userId": "u", "event": "x", "context": {"library": {"name": "analytics-node-next"}}}
    kw = {"client_ip": "203.0.113.5", "headers": {"user-agent": "analytics-node-next/latest", "x-client-geo-country": "DE"}}
    event = one(hit(server, "/v1/track", **kw))
    assert (event.client.ip, event.client.user_agent, event.client.geo) == (None, None, {})
    assert event.headers == {}  # the server's own headers: no bot check or tag reads them as the visitor's
    direct = one(hit({**server, "context": {"direct": True}}, "/v1/track", **kw))
    assert (direct.client.ip, direct.client.user_agent, direct.client.geo) == (
        "203.0.113.5", "analytics-node-next/latest", {"country": "DE"})
    assert direct.headers["user-agent"] == "analytics-node-next/latest"
    given = one(hit({**server, "context": {"ip": "198.51.100.7", "direct": True}}, "/v1/track", **kw))
    assert given.client.ip == "198.51.100.7"  # context.ip wins
    refused(hit({**server, "context": {"ip": "not-an-ip"}}, "/v1/track"), "invalid_field")


def test_the_batch_context_is_merged_under_each_messages_own() -> None:
    body = {"batch": [{"type": "track", "event": "x", "userId": "u", "context": {"locale": "fr-FR"}},
                      {"type": "track", "event": "y", "userId": "u"}],
            "context": {"locale": "en-US", "userAgent": "Mozilla/5.0 (batch)"}}  # fmt: skip
    first, second = parse_hit(hit(body))
    assert (first.client.language, first.client.user_agent) == ("fr-FR", "Mozilla/5.0 (batch)")
    assert second.client.language == "en-US"


def test_nested_properties_and_other_traits_go_nowhere() -> None:
    message = {"userId": "u", "event": "Custom", "properties": {"plan": "pro", "meta": {"a": 1}, "tags": ["x"]},
               "context": {"traits": {"name": "Peter Gibbons", "email": "p@example.com", "industry": "Technology"}}}
    event = one(hit(message, "/v1/track"))
    assert event.params == {"plan": "pro"} and event.user_properties == {}
    assert "Peter" not in event.model_dump_json() and event.user_data.email == "p@example.com"


@pytest.mark.parametrize("message, code, status", [
    ({"userId": "u", "event": "x", "properties": []}, "invalid_field", 400),
    ({"userId": {"id": 1}, "event": "x"}, "invalid_field", 400),
    ({"userId": "u", "event": "x", "messageId": "m" * 101}, "invalid_field", 400),
    ({"userId": "u", "event": "Order Completed", "properties": {"products": {"product_id": "p"}}}, "invalid_field", 400),
    ({"userId": "u", "event": "Order Completed", "properties": {"products": [{"price": "free"}]}}, "invalid_field", 400),
    ({"userId": "u", "event": "x", "properties": {"products": [{"product_id": str(i)} for i in range(201)]}},
     "too_many_items", 413),
])  # fmt: skip
def test_bad_fields_are_refused_by_name(message, code, status) -> None:
    refused(hit(message, "/v1/track"), code, status)


def test_the_size_limits_are_segments() -> None:
    big = {"userId": "u", "event": "x", "properties": {"blob": "x" * (segment.MAX_MESSAGE_BYTES + 1)}}
    assert "32 KB" in refused(hit(big, "/v1/track"), "body_too_large", 413).message
    error = refused(hit({"batch": [{"type": "track", "userId": "u", "event": "y"}, {**big, "type": "track"}]}),
                    "value_too_large", 413)
    assert "batch[1]" in error.message
    many = {"batch": [{"type": "track", "userId": "u", "event": "y"}] * (segment.MAX_BATCH_MESSAGES + 1)}
    refused(hit(many), "too_many_events", 413)
    refused(hit({"batch": []}), "missing_events")
    refused(hit("   "), "missing_events")


# --------------------------------------------------------------------------- gzip


def test_a_gzipped_body_is_inflated_and_a_bomb_or_bad_gzip_is_refused() -> None:
    body = json.dumps({"batch": [{"type": "track", "userId": "u", "event": "x"}]}).encode()
    assert segment.inflate(gzip.compress(body), "gzip", 1000) == body
    assert segment.inflate(body, None, 1000) == body
    bomb = gzip.compress(b"{" + b" " * 5_000_000 + b"}")
    with pytest.raises(InvalidInput) as info:
        segment.inflate(bomb, "gzip", segment.MAX_BATCH_BYTES)
    assert (info.value.code, info.value.status) == ("body_too_large", 413) and len(bomb) < 10_000
    for broken in (b"not gzip at all", gzip.compress(body)[:-12]):
        with pytest.raises(InvalidInput) as info:
            segment.inflate(broken, "gzip", 1000)
        assert info.value.code == "invalid_json" and "gzip" in info.value.message
    with pytest.raises(InvalidInput) as info:
        segment.inflate(body, "br", 1000)
    assert info.value.status == 415


# --------------------------------------------------------------------------- collect


class SegmentCollect:
    """A Collector on a real local queue and store behind Starlette's test client (no sockets)."""

    def __init__(self, tmp_path: Path, paths: PathsConfig | None = None) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Route

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient

        config = Config(storage=StorageConfig(dir=str(tmp_path)), paths=paths or PathsConfig(),
                        destinations={"dry_run": {"type": "log"}})  # fmt: skip
        self.runtime = Runtime(config, LocalBus(tmp_path), SqliteStore(tmp_path))
        self.collector = Collector(self.runtime)
        app = Starlette(routes=[Route("/{path:path}", self.collector.__call__, methods=["GET", "POST", "OPTIONS"])])
        self.http = TestClient(app, base_url="https://collect.shop.example")

    def published(self) -> list[RawHit]:
        msgs = self.runtime.bus.pull("transform", 100)
        self.runtime.bus.ack("transform", [m.ack_id for m in msgs])
        return [RawHit.model_validate_json(m.data) for m in msgs]

    def rows(self, sql: str) -> list[tuple]:
        return self.runtime.store.query(sql)

    def close(self) -> None:
        self.http.close()
        self.runtime.close()


@pytest.fixture
def collect(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENT_WRITE_KEYS", f"other-source, {KEY}")
    c = SegmentCollect(tmp_path)
    yield c
    c.close()


BATCH = {"batch": [{"type": "track", "event": "Order Completed", "userId": "u-1", "messageId": "m-1",
                    "timestamp": iso(RECEIVED), "properties": {"order_id": "o-1", "total": 9.5, "currency": "EUR"}},
                   {"type": "identify", "userId": "u-1", "messageId": "m-2", "traits": {"email": "jane@example.com"}}],
         "sentAt": iso(RECEIVED)}  # fmt: skip


def test_a_batch_with_a_good_write_key_is_queued_and_answered_as_segment_answers(collect) -> None:
    r = collect.http.post("/v1/batch", json=BATCH, headers={"authorization": basic(KEY)})
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True and r.json()["event_ids"] == ["m-1", "m-2"]  # [http] 200 {"success": true}
    (raw,) = collect.published()
    assert raw.source == "segment" and raw.path == "/v1/batch" and "authorization" not in raw.headers
    assert [(e.name, e.event_id) for e in parse_hit(raw)] == [("purchase", "m-1"), ("identify", "m-2")]


def test_a_gzipped_batch_with_the_key_in_the_body_is_queued_without_the_key(collect) -> None:
    body = gzip.compress(json.dumps({**BATCH, "writeKey": KEY}).encode())
    r = collect.http.post("/v1/batch", content=body, headers={"content-encoding": "gzip", "content-type": "application/json"})
    assert r.status_code == 200, r.text
    (raw,) = collect.published()
    assert KEY not in raw.body and json.loads(raw.body)["batch"] == BATCH["batch"]
    assert KEY not in json.dumps(collect.rows("SELECT * FROM failed_events"))


@pytest.mark.parametrize("headers", [{}, {"authorization": basic("not-ours")}])
def test_a_missing_or_wrong_key_is_a_401_with_a_reason_and_a_failed_event(collect, headers) -> None:
    r = collect.http.post("/v1/batch", json=BATCH, headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized" and r.json()["reason"]
    assert collect.published() == []
    (failure,) = collect.rows("SELECT stage, error_code, payload FROM failed_events")
    assert failure[:2] == ("collect", "unauthorized") and "jane@example.com" not in failure[2]
    assert collect.rows("SELECT outcome, reason FROM outcomes") == [("rejected", "unauthorized")]


@pytest.mark.parametrize("body, code", [
    (b'{"batch": [{"type": "track", ', "invalid_json"),
    (json.dumps({"batch": [{"type": "track", "userId": "u"}]}).encode(), "missing_event_name"),
    (json.dumps({"batch": [{"type": "track", "event": "x"}]}).encode(), "missing_client_id"),
])  # fmt: skip
def test_a_bad_body_is_a_400_and_a_failed_event(collect, body, code) -> None:
    r = collect.http.post("/v1/batch", content=body, headers={"authorization": basic(KEY)})
    assert r.status_code == 400 and r.json()["error"] == code, r.text
    assert collect.published() == []
    assert collect.rows("SELECT error_code FROM failed_events") == [(code,)]
    assert collect.rows("SELECT outcome, reason FROM outcomes") == [("rejected", code)]


def test_the_browser_librarys_text_plain_call_and_its_preflight(collect) -> None:
    origin = {"origin": "https://shop.example"}
    pre = collect.http.options("/v1/t", headers={**origin, "access-control-request-method": "POST",
                                                 "access-control-request-headers": "authorization,content-type"})
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "https://shop.example"
    allowed = {h.strip() for h in pre.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-retry-count"} <= allowed
    body = json.dumps({"type": "track", "event": "Product Viewed", "anonymousId": "anon-1", "messageId": "ajs-1",
                       "writeKey": KEY, "sentAt": iso(RECEIVED), "properties": {"product_id": "p1", "price": 3}})
    r = collect.http.post("/v1/t", content=body, headers={**origin, "content-type": "text/plain", "authorization": basic(KEY)})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://shop.example"
    assert "set-cookie" not in r.headers
    (raw,) = collect.published()
    assert KEY not in raw.body and one(raw).ecommerce.items[0].item_id == "p1"


def test_the_prefix_is_configurable_and_empty_turns_the_source_off(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SEGMENT_WRITE_KEYS", KEY)
    moved = SegmentCollect(tmp_path / "a", PathsConfig(segment_prefix="/seg/v1"))
    off = SegmentCollect(tmp_path / "b", PathsConfig(segment_prefix=""))
    try:
        assert moved.http.post("/seg/v1/batch", json=BATCH, headers={"authorization": basic(KEY)}).status_code == 200
        assert moved.http.post("/v1/batch", json=BATCH, headers={"authorization": basic(KEY)}).status_code == 404
        assert off.http.post("/v1/batch", json=BATCH, headers={"authorization": basic(KEY)}).status_code == 404
    finally:
        moved.close()
        off.close()


def test_a_batch_over_the_default_body_limit_but_within_segments_is_taken(collect) -> None:
    filler = {f"f{k}": "x" * 6000 for k in range(4)}  # under the 8 KB a value may have, 24 KB a message
    batch = {"batch": [{"type": "track", "event": "x", "userId": "u", "messageId": f"m{i}", "properties": filler}
                       for i in range(15)]}  # fmt: skip
    body = json.dumps(batch).encode()
    assert collect.runtime.config.server.max_body_bytes < len(body) < segment.MAX_BATCH_BYTES
    r = collect.http.post("/v1/batch", content=body, headers={"authorization": basic(KEY)})
    assert r.status_code == 200 and r.json()["events"] == 15
    too_big = json.dumps({"batch": batch["batch"] * 2}).encode()
    assert collect.http.post("/v1/batch", content=too_big, headers={"authorization": basic(KEY)}).status_code == 413
