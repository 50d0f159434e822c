"""Pinterest Conversions API: payload as Pinterest documents it, consent, and delivery against the fake."""

from __future__ import annotations

import pytest

from tagpipe.config import DEFAULT_CONSENT
from tagpipe.consent import ConsentPolicy
from tagpipe.destinations.base import Verdict
from tagpipe.destinations.pinterest import PinterestConversions, PinterestSettings
from tagpipe.errors import InvalidInput
from tagpipe.models import ClickIds, ClientContext, Consent, PageContext, UserData
from tests.destinations.conftest import NOW, deliver, make_event, response, sha, task_for
from tests.fakes import FakeVendors


def pinterest(secrets: dict | None = None, **settings) -> PinterestConversions:
    return PinterestConversions("pin", PinterestSettings(ad_account_id="549755885175", **settings),
                                secrets or {"access_token": "PIN-TOKEN"})  # fmt: skip


def with_epik(**overrides):
    return make_event(click_ids=ClickIds(epik="dj0yJnU9abc-EPIK"), **overrides)


def test_checkout_golden():
    prepared = pinterest().prepare(with_epik())
    assert prepared.event_name == "checkout"
    assert prepared.payload == {
        "event_name": "checkout",
        "action_source": "web",
        "event_time": int(NOW - 60),
        "event_id": "evt-0",
        "event_source_url": "https://shop.example.com/checkout?step=3",
        "user_data": {
            # Pinterest: lowercase email; phone digits with country code, no '+'; city lowercase without spaces;
            # state two-letter lowercase; country ISO alpha-2 lowercase
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
            "click_id": "dj0yJnU9abc-EPIK",  # the _epik cookie, never hashed
        },
        "custom_data": {
            "currency": "USD",
            "value": "72.05",  # a string, as Pinterest documents it
            "content_ids": ["SKU-1", "SKU-2"],
            "contents": [{"id": "SKU-1", "item_price": "30", "quantity": 2},
                         {"id": "SKU-2", "item_price": "12.05", "quantity": 1}],
            "num_items": 3,
            "order_id": "T-0",
        },
    }
    assert prepared.identifiers == ["em", "ph", "fn", "ln", "external_id", "epik", "ip_ua"]


def test_gender_and_birth_date_follow_pinterests_rules():
    event = make_event(user_data=UserData(email="a@b.co", gender="Female", date_of_birth="1990-02-03"))
    user = pinterest().prepare(event).payload["user_data"]
    assert user["ge"] == [sha("f")] and user["db"] == [sha("19900203")]


def test_names_and_unmapped():
    assert pinterest().prepare(make_event(name="page_view")).event_name == "page_visit"
    assert pinterest().prepare(make_event(name="view_item_list")).event_name == "view_category"
    assert pinterest().prepare(make_event(name="my_custom")) is None
    assert pinterest(send_unmapped=True).prepare(make_event(name="my_custom")).event_name == "custom"
    assert pinterest().prepare(make_event(name="x", vendor_event_name="lead")).event_name == "lead"


def test_an_event_without_email_or_ip_and_user_agent_is_refused():
    event = make_event(user_data=UserData(phone="+16505551234"), client=ClientContext(ip="203.0.113.7"))
    with pytest.raises(InvalidInput) as raised:
        pinterest().prepare(event)
    assert raised.value.code == "pinterest:no_identifier"


def test_consent():
    policy = ConsentPolicy()
    required = DEFAULT_CONSENT["pinterest"]
    denied_storage = with_epik(consent=Consent(ad_storage=False, ad_user_data=True))
    assert not policy.decide(denied_storage, "pinterest", required).allowed  # default: ad_storage is required

    no_user_data = with_epik(consent=Consent(ad_storage=True, ad_user_data=False))
    decision = policy.decide(no_user_data, "pinterest", [])
    user = pinterest().prepare(decision.apply(no_user_data)).payload["user_data"]
    assert set(user) == {"client_ip_address", "client_user_agent", "click_id"}  # no hashed PII at all

    cookie_click = with_epik(consent=Consent(ad_storage=False, ad_user_data=True))
    user = pinterest().prepare(policy.decide(cookie_click, "pinterest", []).apply(cookie_click)).payload["user_data"]
    assert "click_id" not in user  # the _epik cookie is storage: gone without ad_storage
    url_click = with_epik(consent=Consent(ad_storage=False, ad_user_data=True),
                          page=PageContext(url="https://shop.example.com/p?epik=dj0yJnU9abc-EPIK"))
    user = pinterest().prepare(policy.decide(url_click, "pinterest", []).apply(url_click)).payload["user_data"]
    assert user["click_id"] == "dj0yJnU9abc-EPIK"  # the landing URL's own click id is not storage

    npa = with_epik(consent=Consent(ad_storage=True, ad_user_data=True, ad_personalization=False))
    assert pinterest().prepare(npa).payload["opt_out"] is True


@pytest.mark.parametrize(("status", "verdict", "reason"), [
    (400, Verdict.PERMANENT, "pinterest:1"), (401, Verdict.PERMANENT, "pinterest:auth"),
    (403, Verdict.PERMANENT, "pinterest:auth"), (422, Verdict.PERMANENT, "pinterest:1"),
    (429, Verdict.THROTTLE, "pinterest:throttled"), (500, Verdict.RETRY, "pinterest:1"), (503, Verdict.RETRY, "pinterest:1"),
])  # fmt: skip
def test_error_table(status, verdict, reason):
    dest = pinterest()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    result = dest.classify(request, response(status, {"code": 1, "message": "m"}), None)
    assert (result.verdict, result.reason) == (verdict, reason)
    assert "PIN-TOKEN" not in result.detail


def test_delivery_batches_at_1000(fakes: FakeVendors, client, real_now):
    dest = pinterest(secrets=fakes.secrets("pinterest"), endpoint=fakes.url)
    tasks = [task_for(dest, make_event(i, timestamp=real_now - 5)) for i in range(1001)]
    batch, results = deliver(dest, tasks, client)
    assert [len(r.json["data"]) for r in batch.requests] == [1000, 1]
    assert batch.requests[0].headers == {"Authorization": "Bearer pinterest-token"}
    assert [r.verdict for _, r in results] == [Verdict.OK, Verdict.OK]
    assert fakes.pinterest.count == 1001 and not fakes.pinterest.duplicates()


def test_one_refused_event_fails_alone(fakes: FakeVendors, client, real_now):
    dest = pinterest(secrets=fakes.secrets("pinterest"), endpoint=fakes.url)
    fakes.pinterest.mark_bad("evt-1")
    fakes.pinterest.expect_refusal("event refused (marked bad)")
    tasks = [task_for(dest, make_event(i, timestamp=real_now - 5)) for i in range(3)]
    _, [(_, result)] = deliver(dest, tasks, client)
    assert result.verdict is Verdict.OK
    assert result.per_event == {"hit1:0": (Verdict.PERMANENT, "pinterest:event_failed", "event refused (marked bad)")}
    assert fakes.pinterest.event_ids() == ["evt-0", "evt-2"]


def test_refused_token_and_throttling(fakes: FakeVendors, client, real_now):
    fakes.pinterest.expect_refusal("token")
    task = task_for(pinterest(), make_event(timestamp=real_now - 5))
    wrong = pinterest(secrets={"access_token": "nope"}, endpoint=fakes.url)
    _, [(_, result)] = deliver(wrong, [task], client)
    assert (result.verdict, result.reason) == (Verdict.PERMANENT, "pinterest:auth")
    dest = pinterest(secrets=fakes.secrets("pinterest"), endpoint=fakes.url)
    fakes.pinterest.throttle_next(1, retry_after=3)
    _, [(_, result)] = deliver(dest, [task], client)
    assert (result.verdict, result.reason, result.retry_after) == (Verdict.THROTTLE, "pinterest:throttled", 3)
    _, [(_, result)] = deliver(dest, [task], client)
    assert result.verdict is Verdict.OK and fakes.pinterest.count == 1


def test_test_mode_records_nothing(fakes: FakeVendors, client, real_now):
    dest = pinterest(secrets=fakes.secrets("pinterest"), endpoint=fakes.url, validate_only=True)
    batch, [(_, result)] = deliver(dest, [task_for(dest, make_event(timestamp=real_now - 5))], client)
    assert batch.requests[0].url.endswith("/v5/ad_accounts/549755885175/events?test=true")
    assert result.verdict is Verdict.OK
    assert fakes.pinterest.count == 0 and fakes.pinterest.validated == 1
