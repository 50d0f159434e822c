from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from pydantic import ValidationError

from tagpipe.destinations.base import Verdict
from tagpipe.destinations.webhook import Webhook, WebhookSettings, delivery_id, sign
from tests.destinations.conftest import NOW, deliver, make_event, response, sha, task_for
from tests.fakes import FakeVendors


def webhook(endpoint: str = "https://hooks.example.com/tagpipe", secrets: dict | None = None, **settings) -> Webhook:
    dest = Webhook("hook", WebhookSettings(endpoint=endpoint, **settings), secrets or {"secret": "whsec_test"})
    dest.now = lambda: NOW  # type: ignore[method-assign]
    return dest


def test_payload_is_canonical_with_user_data_hashed():
    prepared = webhook().prepare(make_event())
    payload = prepared.payload
    assert payload["event_id"] == "evt-0" and payload["event_name"] == "purchase" and payload["event_time"] == NOW - 60
    assert payload["user_data"] == {
        "em": sha("jane.doe@example.com"), "ph": sha("16505551234"), "fn": sha("jane"), "ln": sha("doe"),
        "ct": sha("sanfrancisco"), "st": sha("ca"), "zp": sha("94107"), "country": sha("us"), "external_id": sha("cust-42"),
    }
    text = json.dumps(payload)
    for raw in ("Jane.Doe@Example.com", "555-1234", "1 Main St", "203.0.113.7"):  # no raw PII, no IP by default
        assert raw not in text
    assert payload["click_ids"]["gclid"] == "Cj0KCQ-test-gclid" and payload["ecommerce"]["transaction_id"] == "T-0"
    assert "em" in prepared.identifiers and "client_id" in prepared.identifiers
    assert webhook(include_ip=True).prepare(make_event()).payload["client"]["ip"] == "203.0.113.7"
    assert webhook(events=["sign_up"]).prepare(make_event()) is None


def test_signature_is_stripe_style_and_delivery_id_is_stable():
    dest = webhook(batch_size=2)
    tasks = [task_for(dest, make_event(i)) for i in range(3)]
    batch = dest.build_requests(tasks)
    assert [len(r.event_uids) for r in batch.requests] == [2, 1]
    request = batch.requests[0]
    t, v1 = (part.split("=", 1)[1] for part in request.headers["X-Tagpipe-Signature"].split(","))
    assert t == str(int(NOW))
    assert v1 == hmac.new(b"whsec_test", f"{t}.".encode() + request.content, hashlib.sha256).hexdigest()
    ids = [hashlib.sha256(f"hook\n{uid}".encode()).hexdigest()[:32] for uid in ("hit0:0", "hit1:0")]
    assert [e["delivery_id"] for e in json.loads(request.content)["events"]] == ids
    assert request.headers["X-Tagpipe-Delivery"] == delivery_id(ids[::-1])  # the set, whatever the order
    assert dest.build_requests(tasks).requests[0].headers["X-Tagpipe-Delivery"] == request.headers["X-Tagpipe-Delivery"]
    assert json.loads(request.content)["events"][0]["event_id"] == "evt-0"
    assert sign("k", 1, b"{}") == "t=1,v1=" + hmac.new(b"k", b"1.{}", hashlib.sha256).hexdigest()


def test_a_resent_event_keeps_its_delivery_id_in_any_batch():
    """Issue 14 item 9: after a crash the event is resent with others (or alone): same id per event."""
    dest = webhook(batch_size=10)
    tasks = [task_for(dest, make_event(i)) for i in range(3)]
    first = json.loads(dest.build_requests(tasks).requests[0].content)["events"]
    alone = dest.build_requests([tasks[1]]).requests[0]
    again = json.loads(dest.build_requests([tasks[2], tasks[1]]).requests[0].content)["events"]
    assert json.loads(alone.content)["events"][0]["delivery_id"] == first[1]["delivery_id"] == again[1]["delivery_id"]
    assert alone.headers["X-Tagpipe-Delivery"] == first[1]["delivery_id"]
    assert len({e["delivery_id"] for e in first}) == 3
    other = webhook(batch_size=10)
    other.id = "hook2"
    assert json.loads(other.build_requests([tasks[1]]).requests[0].content)["events"][0]["delivery_id"] != \
        first[1]["delivery_id"]  # per destination


def test_reserved_headers_cannot_be_overridden():
    with pytest.raises(ValidationError):
        WebhookSettings(endpoint="https://x.example", headers={"X-Tagpipe-Signature": "forged"})


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, Verdict.OK), (202, Verdict.OK), (204, Verdict.OK), (408, Verdict.RETRY), (429, Verdict.THROTTLE),
     (500, Verdict.RETRY), (503, Verdict.RETRY), (400, Verdict.PERMANENT), (401, Verdict.PERMANENT),
     (404, Verdict.PERMANENT), (410, Verdict.PERMANENT), (422, Verdict.PERMANENT)],
)
def test_http_contract(status, verdict):
    dest = webhook()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    assert dest.classify(request, response(status), None).verdict is verdict


def test_delivers_to_the_fake_which_verifies_the_signature(fakes: FakeVendors, client, real_now):
    dest = webhook(endpoint=f"{fakes.url}/webhook", secrets=fakes.secrets("webhook"))
    dest.now = lambda: real_now
    _, results = deliver(dest, [task_for(dest, make_event(i)) for i in range(3)], client)
    assert [r.verdict for _, r in results] == [Verdict.OK]
    assert fakes.webhook.count == 3 and not fakes.webhook.duplicates()

    forged = webhook(endpoint=f"{fakes.url}/webhook", secrets={"secret": "wrong"})
    forged.now = lambda: real_now
    _, results = deliver(forged, [task_for(forged, make_event(9))], client)
    assert results[0][1].verdict is Verdict.PERMANENT and fakes.webhook.refused[-1]["reason"] == "signature_mismatch"

    stale = webhook(endpoint=f"{fakes.url}/webhook", secrets=fakes.secrets("webhook"))
    stale.now = lambda: real_now - 3600  # a replayed request: signed an hour ago
    _, results = deliver(stale, [task_for(stale, make_event(8))], client)
    assert results[0][1].verdict is Verdict.PERMANENT and fakes.webhook.refused[-1]["reason"] == "signature_stale"
    assert fakes.webhook.count == 3
