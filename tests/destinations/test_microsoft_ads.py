"""Microsoft Advertising UET Conversions API: payload, hashing, consent, delivery against the fake."""

from __future__ import annotations

import pytest

from tagpipe.consent import ConsentPolicy
from tagpipe.destinations.base import Verdict
from tagpipe.destinations.microsoft_ads import MicrosoftAdsSettings, MicrosoftUetConversions
from tagpipe.errors import InvalidInput
from tagpipe.hashing.microsoft import microsoft_hash
from tagpipe.models import ClickIds, ClientContext, Consent, PageContext, UserData
from tests.destinations.conftest import NOW, deliver, make_event, response, sha, task_for
from tests.fakes import FakeVendors


def microsoft(secrets: dict | None = None, **settings) -> MicrosoftUetConversions:
    return MicrosoftUetConversions("ms", MicrosoftAdsSettings(uet_tag_id="343210987", **settings),
                                   secrets or {"access_token": "MS-TOKEN"})  # fmt: skip


def with_ms(**overrides):
    return make_event(click_ids=ClickIds(msclkid="3f4a5b-msclkid", uet_vid="a1b2c3d4e5f611ee8c3f1b2c3d4e5f60"),
                      **overrides)  # fmt: skip


def test_email_rule_differs_from_meta_and_google():
    # dots and +suffix go for every domain (Microsoft's partner template), not only gmail (Google), not never (Meta)
    assert microsoft_hash("email", " Jane.Doe+shop@Example.com ") == sha("janedoe@example.com")
    assert microsoft_hash("phone", "(650) 555-1234", default_country="US") == sha("+16505551234")
    assert microsoft_hash("external_id", " Cust-42 ") == sha("Cust-42")
    assert microsoft_hash("email", "not an email") is None


def test_purchase_golden():
    prepared = microsoft().prepare(with_ms())
    assert prepared.event_name == "purchase"
    assert prepared.payload == {
        "eventType": "custom",
        "eventName": "purchase",
        "eventId": "evt-0",
        "eventTime": int(NOW - 60),
        "eventSourceUrl": "https://shop.example.com/checkout?step=3",
        "pageTitle": "Checkout",
        "referrerUrl": "https://shop.example.com/cart",
        "adStorageConsent": "G",
        "userData": {
            "em": sha("janedoe@example.com"),
            "ph": sha("+16505551234"),
            "externalId": sha("cust-42"),
            "msclkid": "3f4a5b-msclkid",
            "anonymousId": "a1b2c3d4e5f611ee8c3f1b2c3d4e5f60",
            "clientIpAddress": "203.0.113.7",
            "clientUserAgent": "Mozilla/5.0 (X11; Linux)",
        },
        "customData": {
            "value": 72.05,
            "currency": "USD",
            "transactionId": "T-0",
            "itemIds": ["SKU-1", "SKU-2"],
            "items": [{"id": "SKU-1", "name": "Shirt", "price": 30.0, "quantity": 2},
                      {"id": "SKU-2", "name": "Socks", "price": 12.05, "quantity": 1}],
            "pageType": "purchase",
        },
    }
    assert prepared.identifiers == ["msclkid", "em", "ph", "external_id", "uet_vid"]


def test_page_load_and_identifier_rule():
    page = microsoft().prepare(with_ms(name="page_view")).payload
    assert page["eventType"] == "pageLoad" and "eventName" not in page
    assert microsoft().prepare(make_event(name="my_custom")) is None
    with pytest.raises(InvalidInput) as raised:
        microsoft().prepare(make_event(user_data=UserData(), client=ClientContext(ip="203.0.113.7", user_agent="UA")))
    assert raised.value.code == "microsoft_ads:no_identifier"


def test_consent():
    policy = ConsentPolicy()
    no_storage = with_ms(consent=Consent(ad_storage=False, ad_user_data=True))
    payload = microsoft().prepare(policy.decide(no_storage, "microsoft_ads", []).apply(no_storage)).payload
    assert payload["adStorageConsent"] == "D"
    assert "msclkid" not in payload["userData"] and "anonymousId" not in payload["userData"]
    landing = with_ms(consent=Consent(ad_storage=False, ad_user_data=True),
                      page=PageContext(url="https://shop.example.com/?msclkid=3f4a5b-msclkid"))
    user = microsoft().prepare(policy.decide(landing, "microsoft_ads", []).apply(landing)).payload["userData"]
    assert user["msclkid"] == "3f4a5b-msclkid" and "anonymousId" not in user
    no_data = with_ms(consent=Consent(ad_storage=True, ad_user_data=False))
    user = microsoft().prepare(policy.decide(no_data, "microsoft_ads", []).apply(no_data)).payload["userData"]
    assert not {"em", "ph", "externalId"} & set(user)


@pytest.mark.parametrize(("status", "verdict", "reason"), [
    (200, Verdict.OK, "ok"), (400, Verdict.PERMANENT, "http:400"), (401, Verdict.PERMANENT, "microsoft_ads:auth"),
    (403, Verdict.PERMANENT, "microsoft_ads:auth"), (429, Verdict.THROTTLE, "microsoft_ads:throttled"),
    (500, Verdict.RETRY, "http:500"),
])  # fmt: skip
def test_error_table(status, verdict, reason):
    dest = microsoft()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    result = dest.classify(request, response(status, {"error": {"code": "InvalidEvent", "message": "m"}}), None)
    assert (result.verdict, result.reason) == (verdict, reason)


def test_delivery_batches_at_1000(fakes: FakeVendors, client, real_now):
    dest = microsoft(secrets=fakes.secrets("microsoft_ads"), endpoint=fakes.url)
    batch, results = deliver(dest, [task_for(dest, with_ms(event_id=f"evt-{i}", event_uid=f"h{i}:0",
                                                           timestamp=real_now - 5)) for i in range(1001)], client)  # fmt: skip
    assert [len(r.json["data"]) for r in batch.requests] == [1000, 1]
    assert batch.requests[0].url.endswith("/v1/343210987/events") and batch.requests[0].json["dataProvider"] == "tagpipe"
    assert [r.verdict for _, r in results] == [Verdict.OK, Verdict.OK]
    assert fakes.microsoft_ads.count == 1001 and not fakes.microsoft_ads.duplicates()


def test_bad_event_token_and_throttling(fakes: FakeVendors, client, real_now):
    fakes.microsoft_ads.expect_refusal("token", "event refused (marked bad)")
    dest = microsoft(secrets=fakes.secrets("microsoft_ads"), endpoint=fakes.url)
    fakes.microsoft_ads.mark_bad("evt-0")
    task = task_for(dest, make_event(timestamp=real_now - 5))
    _, [(_, result)] = deliver(dest, [task], client)
    assert result.verdict is Verdict.PERMANENT and "InvalidEvent" in result.detail
    _, [(_, result)] = deliver(microsoft(secrets={"access_token": "nope"}, endpoint=fakes.url), [task], client)
    assert result.reason == "microsoft_ads:auth"
    fakes.microsoft_ads.throttle_next(1, retry_after=1)
    _, [(_, result)] = deliver(dest, [task_for(dest, make_event(1, timestamp=real_now - 5))], client)
    assert (result.verdict, result.retry_after) == (Verdict.THROTTLE, 1)
    assert fakes.microsoft_ads.count == 0
