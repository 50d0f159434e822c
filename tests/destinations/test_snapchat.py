"""Snapchat Conversions API v3: payload as Snap documents it, consent, and delivery against the fake."""

from __future__ import annotations

import pytest

from tagpipe.consent import ConsentPolicy
from tagpipe.destinations.base import Verdict
from tagpipe.destinations.snapchat import SnapchatConversions, SnapchatSettings
from tagpipe.errors import InvalidInput
from tagpipe.hashing.snapchat import snapchat_hash
from tagpipe.models import ClickIds, Consent, PageContext, UserData
from tests.destinations.conftest import NOW, deliver, make_event, response, sha, task_for
from tests.fakes import FakeVendors


def snap(secrets: dict | None = None, **settings) -> SnapchatConversions:
    dest = SnapchatConversions("snap", SnapchatSettings(pixel_id="0a1b2c3d-pixel", **settings),
                               secrets or {"access_token": "SNAP-TOKEN"})  # fmt: skip
    dest.now = lambda: NOW  # the golden clock: the 37-day window is checked against it
    return dest


def with_snap_ids(**overrides):
    return make_event(click_ids=ClickIds(sc_click_id="6f1a-sc-click", sc_cookie1="2c7e-scid"), **overrides)


def test_documented_normalisation_examples():
    # the Parameters page's own examples: Person@Example.com -> 542d2401...; +44 844 412 4653 -> 448444124653
    assert snapchat_hash("em", " Person@Example.com ") == "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"
    assert snapchat_hash("ph", "+44 844 412 4653") == sha("448444124653")
    assert snapchat_hash("ph", "0044 844 412 4653") == sha("448444124653")  # double 0 before the country code
    assert snapchat_hash("ph", "0844 412 4653", default_country="GB") == sha("448444124653")  # national 0 dropped
    assert snapchat_hash("ph", "844 412 4653") is None  # no country code: dropped, never hashed wrong


def test_purchase_golden():
    prepared = snap().prepare(with_snap_ids())
    assert prepared.event_name == "PURCHASE"
    assert prepared.payload == {
        "event_name": "PURCHASE",
        "event_time": int(NOW - 60),
        "event_id": "evt-0",
        "action_source": "WEB",
        "event_source_url": "https://shop.example.com/checkout?step=3",
        "user_data": {
            "em": [sha("jane.doe@example.com")],
            "ph": [sha("16505551234")],
            "fn": [sha("jane")],
            "ln": [sha("doe")],
            "ct": [sha("sanfrancisco")],
            "st": [sha("ca")],
            "zp": [sha("94107")],
            "country": [sha("us")],
            "external_id": [sha("cust-42"), sha("user-42")],
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0 (X11; Linux)",
            "sc_click_id": "6f1a-sc-click",
            "sc_cookie1": "2c7e-scid",
        },
        "custom_data": {
            "currency": "USD",
            "value": 72.05,
            "contents": [{"id": "SKU-1", "quantity": 2, "item_price": 30.0, "brand": "Acme"},
                         {"id": "SKU-2", "quantity": 1, "item_price": 12.05}],
            "content_ids": ["SKU-1", "SKU-2"],
            "num_items": 3,
            "order_id": "T-0",
        },
    }
    assert prepared.identifiers == ["em", "ph", "fn", "ln", "external_id", "sc_click_id", "sc_cookie1", "ip_ua"]


def test_names_age_and_identifiers():
    assert snap().prepare(make_event(name="add_to_cart")).event_name == "ADD_CART"
    assert snap().prepare(make_event(name="begin_checkout")).event_name == "START_CHECKOUT"
    assert snap().prepare(make_event(name="my_custom")) is None
    snap_now = snap()
    with pytest.raises(InvalidInput) as raised:
        snap_now.prepare(make_event(timestamp=NOW - 38 * 86_400))
    assert raised.value.code == "snapchat:event_too_old"
    assert snap_now.prepare(make_event(timestamp=NOW - 36 * 86_400)) is not None
    with pytest.raises(InvalidInput):
        snap().prepare(make_event(user_data=UserData(), client=make_event().client.model_copy(
            update={"ip": None, "user_agent": None, "user_id": None})))


def test_consent():
    policy = ConsentPolicy()
    no_storage = with_snap_ids(consent=Consent(ad_storage=False, ad_user_data=True))
    user = snap().prepare(policy.decide(no_storage, "snapchat", []).apply(no_storage)).payload["user_data"]
    assert "sc_click_id" not in user and "sc_cookie1" not in user and "em" in user
    landing = with_snap_ids(consent=Consent(ad_storage=False, ad_user_data=True),
                            page=PageContext(url="https://shop.example.com/?ScCid=6f1a-sc-click"))
    user = snap().prepare(policy.decide(landing, "snapchat", []).apply(landing)).payload["user_data"]
    assert user["sc_click_id"] == "6f1a-sc-click" and "sc_cookie1" not in user
    no_data = with_snap_ids(consent=Consent(ad_storage=True, ad_user_data=False))
    user = snap().prepare(policy.decide(no_data, "snapchat", []).apply(no_data)).payload["user_data"]
    assert not {"em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id"} & set(user)


@pytest.mark.parametrize(("status", "body", "verdict", "reason"), [
    (200, {"status": "VALID"}, Verdict.OK, "ok"),
    (200, {"status": "INVALID", "reason": "event_name"}, Verdict.PERMANENT, "snapchat:invalid"),
    (400, {"status": "INVALID", "reason": "x"}, Verdict.PERMANENT, "snapchat:invalid"),
    (401, {"status": "INVALID"}, Verdict.PERMANENT, "snapchat:auth"),
    (429, None, Verdict.THROTTLE, "snapchat:throttled"),
    (500, None, Verdict.RETRY, "http:500"),
])  # fmt: skip
def test_error_table(status, body, verdict, reason):
    dest = snap()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    assert "SNAP-TOKEN" not in request.masked_url
    result = dest.classify(request, response(status, body), None)
    assert (result.verdict, result.reason) == (verdict, reason)


def test_delivery_batches_at_2000(fakes: FakeVendors, client, real_now):
    dest = snap(secrets=fakes.secrets("snapchat"), endpoint=fakes.url)
    tasks = [task_for(dest, make_event(i, timestamp=real_now - 5)) for i in range(2001)]
    batch, results = deliver(dest, tasks, client)
    assert [len(r.json["data"]) for r in batch.requests] == [2000, 1]
    assert [r.verdict for _, r in results] == [Verdict.OK, Verdict.OK]
    assert fakes.snapchat.count == 2001 and not fakes.snapchat.duplicates()


def test_a_bad_event_refuses_its_request(fakes: FakeVendors, client, real_now):
    fakes.snapchat.mark_bad("evt-1")
    fakes.snapchat.expect_refusal("event refused (marked bad)")
    dest = snap(secrets=fakes.secrets("snapchat"), endpoint=fakes.url)
    _, [(_, result)] = deliver(dest, [task_for(dest, make_event(i, timestamp=real_now - 5)) for i in range(2)], client)
    assert (result.verdict, result.reason) == (Verdict.PERMANENT, "snapchat:invalid")
    assert fakes.snapchat.count == 0


def test_refused_token_throttling_and_validate(fakes: FakeVendors, client, real_now):
    fakes.snapchat.expect_refusal("token")
    task = task_for(snap(), make_event(timestamp=real_now - 5))
    _, [(_, result)] = deliver(snap(secrets={"access_token": "nope"}, endpoint=fakes.url), [task], client)
    assert (result.verdict, result.reason) == (Verdict.PERMANENT, "snapchat:auth")
    dest = snap(secrets=fakes.secrets("snapchat"), endpoint=fakes.url)
    fakes.snapchat.throttle_next(1, retry_after=2)
    _, [(_, result)] = deliver(dest, [task], client)
    assert (result.verdict, result.retry_after) == (Verdict.THROTTLE, 2)
    check = snap(secrets=fakes.secrets("snapchat"), endpoint=fakes.url, validate_only=True)
    batch, [(_, result)] = deliver(check, [task], client)
    assert "/v3/0a1b2c3d-pixel/events/validate?" in batch.requests[0].url and result.verdict is Verdict.OK
    assert fakes.snapchat.count == 0 and fakes.snapchat.validated == 1
