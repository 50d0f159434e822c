"""Push delivery: the envelope parser, and the emulator pushing to a real running HTTP function."""

from __future__ import annotations

import base64
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tagpipe.errors import InvalidInput
from tagpipe.transport.base import DEAD_LETTER, DELIVERIES, RAW_HITS, Subscription
from tagpipe.transport.push import parse_push_envelope, push_envelope, subscription_of
from tests.gcp.conftest import FAST, Server, free_port, pull_until

DATA = Path(__file__).with_name("data")


# --------------------------------------------------------------------------- the parser


def test_envelope_recorded_from_the_emulator():
    body = (DATA / "emulator_push_envelope.json").read_bytes()
    m = parse_push_envelope(body, {"Content-Type": "application/json"})
    assert m.data == b"hello"
    assert dict(m.attributes) == {"destination": "ga4"}
    assert m.message_id == "3"
    assert m.delivery_attempt == 1  # the emulator never sends deliveryAttempt
    assert subscription_of(m) == "projects/demo2/subscriptions/push1"
    assert m.publish_time == datetime(2026, 11, 25, 6, 33, 35, 391000, tzinfo=UTC).timestamp()


def test_envelope_as_pubsub_documents_it():
    body = (DATA / "pubsub_push_envelope.json").read_bytes()
    m = parse_push_envelope(body, {"content-type": "application/json; charset=utf-8"}, prefix="tagpipe")
    assert json.loads(m.data) == {"destination": "meta"}
    assert m.delivery_attempt == 3
    assert m.attributes["CloudPubSubDeadLetterSourceSubscription"] == "deliver"  # prefix stripped
    assert m.publish_time == pytest.approx(1614366835.749470)  # nanoseconds cut to microseconds
    assert m.ack_id == "projects/myproject/subscriptions/tagpipe-deliver#2070443601311540"


def test_round_trip_with_the_builder():
    body = push_envelope(b"\x00\xffbinary", {"a": "1"}, "m-9", delivery_attempt=7)
    m = parse_push_envelope(body)
    assert (m.data, dict(m.attributes), m.message_id, m.delivery_attempt) == (b"\x00\xffbinary", {"a": "1"}, "m-9", 7)


def test_attributes_only_message_has_empty_data():
    m = parse_push_envelope(json.dumps({"message": {"messageId": "1", "attributes": {"k": "v"}}}))
    assert m.data == b"" and m.publish_time == 0.0 and m.delivery_attempt == 1


@pytest.mark.parametrize(
    "body, why",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "no 'message'"),
        (b'{"message": "x"}', "no 'message'"),
        (b'{"subscription": "s"}', "no 'message'"),
        (b'{"message": {"data": "aGk="}}', "messageId"),
        (b'{"message": {"messageId": "1", "data": "***"}}', "base64"),
        (b'{"message": {"messageId": "1", "data": 5}}', "base64"),
        (b'{"message": {"messageId": "1", "attributes": {"k": 1}}}', "attributes"),
        (b'{"message": {"messageId": "1"}, "deliveryAttempt": "x"}', "deliveryAttempt"),
        (b'{"message": {"messageId": "1", "publishTime": "yesterday"}}', "publishTime"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_malformed_envelopes_are_invalid_input(body, why):
    with pytest.raises(InvalidInput, match=why) as info:
        parse_push_envelope(body)
    assert info.value.status == 400
    assert info.value.code == "invalid_push_envelope"


def test_non_json_content_type_is_rejected():
    with pytest.raises(InvalidInput, match="JSON body"):
        parse_push_envelope(push_envelope(b"x"), {"Content-Type": "text/plain"})


def test_malformed_envelope_answers_400_through_the_framework(tmp_path, monkeypatch):
    """The function itself, in-process through functions-framework (WSGI app, test client)."""
    import functions_framework

    monkeypatch.setenv("PUSH_LOG", str(tmp_path / "log.jsonl"))
    app = functions_framework.create_app("receive", str(Path(__file__).parent / "push_function" / "main_wsgi.py"))
    client = app.test_client()
    assert client.post("/", data=b"garbage", content_type="application/json").status_code == 400
    ok = client.post("/", data=push_envelope(b"x", {"mode": "ack"}), content_type="application/json")
    assert ok.status_code == 204


# --------------------------------------------------------------------------- the real thing


class PushEndpoint:
    def __init__(self, server: Server, log: Path) -> None:
        self.server, self.log = server, log

    @property
    def url(self) -> str:
        return f"http://{self.server.host}/"

    def deliveries(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def wait(self, predicate, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.deliveries()
            if predicate(got):
                return got
            time.sleep(0.1)
        raise AssertionError(f"push deliveries never satisfied the test: {self.deliveries()}")


def _endpoint(kind: str, tmp_path_factory) -> PushEndpoint:
    port = free_port()
    folder = tmp_path_factory.mktemp(f"push-{kind}")
    log = folder / "deliveries.jsonl"
    source = Path(__file__).parent / "push_function" / f"main_{kind}.py"
    # Started the way the gen2 Python buildpack starts a function: the bare `functions-framework`
    # command configured by environment variables, so FUNCTION_USE_ASGI=true is what selects the
    # ASGI server (as Terraform sets it), not a --asgi flag.
    env = {"PUSH_LOG": str(log), "FUNCTION_TARGET": "receive", "FUNCTION_SOURCE": str(source),
           "FUNCTION_SIGNATURE_TYPE": "http", "HOST": "127.0.0.1", "PORT": str(port)}
    if kind == "asgi":
        env["FUNCTION_USE_ASGI"] = "true"
    server = Server(f"functions-framework ({kind})", [sys.executable, "-m", "functions_framework"], port,
                    env=env, log=folder / "server.log")
    return PushEndpoint(server, log)


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory):
    """Started on first use, one per kind, stopped at the end of the module."""
    started: dict[str, PushEndpoint] = {}

    def get(kind: str) -> PushEndpoint:
        if kind not in started:
            started[kind] = _endpoint(kind, tmp_path_factory)
        return started[kind]

    yield get
    for ep in started.values():
        ep.server.stop()


@pytest.fixture(params=["asgi", "wsgi"])
def endpoint(request, endpoints):
    return endpoints(request.param)


@pytest.fixture
def push_bus(pubsub_emulator, project, endpoint):
    from tagpipe.transport.pubsub import PubSubBus

    bus = PubSubBus(project, "tagpipe", FAST, publish_timeout=5.0)
    bus.ensure_topology(push_endpoints={"transform": endpoint.url, "deliver": endpoint.url},
                        oidc_service_account="invoker@test.iam.gserviceaccount.com")
    yield bus
    bus.close()


def _mine(deliveries, ids):
    return [d for d in deliveries if d["message_id"] in ids]


def test_push_ack_nack_and_throttle(push_bus, endpoint):
    ack_id = push_bus.publish(RAW_HITS, b'{"hit":"ack"}', {"mode": "ack"})
    nack_id = push_bus.publish(RAW_HITS, b'{"hit":"nack"}', {"mode": "nack-once"})
    throttle_id = push_bus.publish(RAW_HITS, b'{"hit":"429"}', {"mode": "throttle-once"})
    ids = {ack_id, nack_id, throttle_id}

    def settled(got):
        mine = _mine(got, ids)
        return sum(d["message_id"] == nack_id for d in mine) >= 2 and sum(
            d["message_id"] == throttle_id for d in mine) >= 2 and any(d["message_id"] == ack_id for d in mine)

    endpoint.wait(settled)
    time.sleep(2.5)  # long enough for the emulator to redeliver anything it still considers unacked
    mine = _mine(endpoint.deliveries(), ids)
    counts = {i: sum(d["message_id"] == i for d in mine) for i in ids}
    assert counts == {ack_id: 1, nack_id: 2, throttle_id: 2}  # 204 acks; 503 and 429 redeliver once
    first = next(d for d in mine if d["message_id"] == ack_id)
    assert first["data"] == '{"hit":"ack"}'
    assert first["attributes"] == {"mode": "ack"}
    assert first["delivery_attempt"] == 1  # the emulator sends no deliveryAttempt: we say 1
    assert first["subscription"] == push_bus.subscription_path("transform")
    assert abs(first["publish_time"] - time.time()) < 60


def test_push_routes_deliveries_by_attribute(push_bus, endpoint):
    mid = push_bus.publish(DELIVERIES, json.dumps({"destination": "tiktok"}).encode(), {"mode": "ack"})
    (got,) = _mine(endpoint.wait(lambda g: _mine(g, {mid})), {mid})
    assert got["attributes"]["destination"] == "tiktok"
    assert got["subscription"] == push_bus.subscription_path("deliver")


def test_push_dead_letters_after_max_attempts(pubsub_emulator, project, endpoints):
    """Dead-lettering is the emulator's behaviour, not the server's: one server kind is enough."""
    from tagpipe.transport.pubsub import PubSubBus

    endpoint = endpoints("asgi")
    topology = {**FAST, "transform": Subscription("transform", RAW_HITS, 5, 0, 1, 10, DEAD_LETTER)}
    bus = PubSubBus(project, "tagpipe", topology)
    bus.ensure_topology(push_endpoints={"transform": endpoint.url})
    try:
        mid = bus.publish(RAW_HITS, b'{"hit":"poison"}', {"mode": "nack"})
        got = endpoint.wait(lambda g: len(_mine(g, {mid})) >= 5, timeout=40)
        assert len(_mine(got, {mid})) == 5
        (dead,) = pull_until(bus, "dead-letter-archive", 1, timeout=20)
        assert dead.data == b'{"hit":"poison"}'
        assert dead.attributes["CloudPubSubDeadLetterSourceSubscription"] == "transform"
        assert dead.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
        bus.ack("dead-letter-archive", [dead.ack_id])
        time.sleep(1.5)
        assert len(_mine(endpoint.deliveries(), {mid})) == 5  # nothing after dead-lettering
    finally:
        bus.close()


def test_base64_matches_what_pubsub_sends():
    # Pub/Sub pushes standard base64 with padding
    assert json.loads(push_envelope(b"\xfb\xff"))["message"]["data"] == base64.b64encode(b"\xfb\xff").decode()
