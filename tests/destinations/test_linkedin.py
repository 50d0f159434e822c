"""LinkedIn Conversions API: conversion events as LinkedIn documents them, consent, delivery against the fake."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tagpipe.consent import ConsentPolicy
from tagpipe.destinations.base import Verdict
from tagpipe.destinations.linkedin import LinkedInConversions, LinkedInSettings
from tagpipe.errors import InvalidInput
from tagpipe.models import Address, ClickIds, Consent, PageContext, UserData
from tests.destinations.conftest import NOW, deliver, make_event, response, sha, task_for
from tests.fakes import FakeVendors

RULES = {"purchase": "104012", "generate_lead": "104013"}


def linkedin(secrets: dict | None = None, **settings) -> LinkedInConversions:
    settings.setdefault("conversion_rules", RULES)
    dest = LinkedInConversions("li", LinkedInSettings(**settings), secrets or {"access_token": "LI-TOKEN"})
    dest.now = lambda: NOW
    return dest


def with_li(**overrides):
    return make_event(click_ids=ClickIds(li_fat_id="7c1b2d3e-li-fat"), **overrides)


def test_conversion_golden():
    prepared = linkedin().prepare(with_li(params={"company_name": "Acme Inc", "job_title": "CTO"}))
    assert prepared.event_name == "PURCHASE"
    assert prepared.payload == {
        "conversion": "urn:lla:llaPartnerConversion:104012",
        "conversionHappenedAt": int((NOW - 60) * 1000),
        "conversionValue": {"currencyCode": "USD", "amount": "72.05"},
        "eventId": "evt-0",
        "user": {
            "userIds": [{"idType": "SHA256_EMAIL", "idValue": sha("jane.doe@example.com")},
                        {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": "7c1b2d3e-li-fat"}],
            "userInfo": {"firstName": "Jane", "lastName": "Doe", "companyName": "Acme Inc", "title": "CTO",
                         "countryCode": "US"},
        },
    }
    assert prepared.identifiers == ["em", "li_fat_id", "fn", "ln"]


def test_rules_names_and_limits():
    assert linkedin().prepare(make_event(name="page_view")) is None  # no rule for it
    lead = linkedin().prepare(make_event(name="generate_lead", ecommerce=make_event().ecommerce.model_copy(
        update={"value": None})))
    assert lead.payload["conversion"].endswith(":104013") and "conversionValue" not in lead.payload
    half_name = linkedin().prepare(make_event(user_data=UserData(email="a@b.co", address=Address(first_name="A"))))
    assert "userInfo" not in half_name.payload["user"]  # firstName and lastName come together or not at all
    with pytest.raises(InvalidInput) as raised:
        linkedin().prepare(make_event(timestamp=NOW - 91 * 86_400))
    assert raised.value.code == "linkedin:event_too_old"
    with pytest.raises(InvalidInput) as raised:
        linkedin().prepare(make_event(user_data=UserData(phone="+16505551234")))
    assert raised.value.code == "linkedin:no_identifier"
    with pytest.raises(ValidationError):
        LinkedInSettings(conversion_rules={"purchase": "urn:lla:llaPartnerConversion:1"})
    with pytest.raises(ValidationError):
        LinkedInSettings(conversion_rules={})


def test_consent():
    policy = ConsentPolicy()
    no_storage = with_li(consent=Consent(ad_storage=False, ad_user_data=True))
    ids = linkedin().prepare(policy.decide(no_storage, "linkedin", []).apply(no_storage)).payload["user"]["userIds"]
    assert [i["idType"] for i in ids] == ["SHA256_EMAIL"]
    landing = with_li(consent=Consent(ad_storage=False, ad_user_data=True),
                      page=PageContext(url="https://shop.example.com/?li_fat_id=7c1b2d3e-li-fat"))
    ids = linkedin().prepare(policy.decide(landing, "linkedin", []).apply(landing)).payload["user"]["userIds"]
    assert "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID" in [i["idType"] for i in ids]
    no_data = with_li(consent=Consent(ad_storage=True, ad_user_data=False))
    user = linkedin().prepare(policy.decide(no_data, "linkedin", []).apply(no_data)).payload["user"]
    assert user == {"userIds": [{"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": "7c1b2d3e-li-fat"}]}


def test_headers_and_batches():
    dest = linkedin()
    [single] = dest.build_requests([task_for(dest, make_event())]).requests
    assert single.url == "https://api.linkedin.com/rest/conversionEvents"
    assert single.headers == {"Authorization": "Bearer LI-TOKEN", "LinkedIn-Version": "202604",
                              "X-Restli-Protocol-Version": "2.0.0"}  # fmt: skip
    assert single.json["eventId"] == "evt-0"  # one event: the event itself is the body
    batch = dest.build_requests([task_for(dest, make_event(i)) for i in range(5001)]).requests
    assert [len(r.json["elements"]) for r in batch[:1]] == [5000] and batch[1].json["eventId"] == "evt-5000"
    assert batch[0].headers["X-RestLi-Method"] == "BATCH_CREATE"


@pytest.mark.parametrize(("status", "verdict", "reason"), [
    (201, Verdict.OK, "ok"), (400, Verdict.PERMANENT, "linkedin:400"), (401, Verdict.PERMANENT, "linkedin:auth"),
    (403, Verdict.PERMANENT, "linkedin:auth"), (422, Verdict.PERMANENT, "linkedin:422"),
    (426, Verdict.PERMANENT, "linkedin:426"), (429, Verdict.THROTTLE, "linkedin:throttled"),
    (503, Verdict.RETRY, "linkedin:503"),
])  # fmt: skip
def test_error_table(status, verdict, reason):
    dest = linkedin()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    result = dest.classify(request, response(status, {"status": status, "serviceErrorCode": 100, "message": "m"}), None)
    assert (result.verdict, result.reason) == (verdict, reason)


def test_delivery_single_batch_and_per_event_refusal(fakes: FakeVendors, client, real_now):
    fakes.linkedin.expect_refusal("event refused (marked bad)")
    dest = linkedin(secrets=fakes.secrets("linkedin"), endpoint=fakes.url)
    dest.now = lambda: real_now
    _, [(_, result)] = deliver(dest, [task_for(dest, make_event(0, timestamp=real_now - 5))], client)
    assert result.verdict is Verdict.OK
    fakes.linkedin.mark_bad("evt-2")
    tasks = [task_for(dest, make_event(i, timestamp=real_now - 5)) for i in range(1, 4)]
    _, [(_, result)] = deliver(dest, tasks, client)
    assert result.verdict is Verdict.OK and result.per_event == {"hit2:0": (Verdict.PERMANENT, "linkedin:400",
                                                                             "LinkedIn refused the conversion event")}
    assert fakes.linkedin.event_ids() == ["evt-0", "evt-1", "evt-3"]


def test_token_version_and_throttling(fakes: FakeVendors, client, real_now):
    fakes.linkedin.expect_refusal("token")
    dest = linkedin(secrets=fakes.secrets("linkedin"), endpoint=fakes.url)
    dest.now = lambda: real_now
    task = task_for(dest, make_event(timestamp=real_now - 5))
    _, [(_, result)] = deliver(linkedin(secrets={"access_token": "nope"}, endpoint=fakes.url), [task], client)
    assert (result.verdict, result.reason) == (Verdict.PERMANENT, "linkedin:auth")
    assert "serviceErrorCode 65600" in result.detail
    fakes.linkedin.throttle_next(1, retry_after=5)
    _, [(_, result)] = deliver(dest, [task], client)
    assert (result.verdict, result.retry_after) == (Verdict.THROTTLE, 5)
    assert fakes.linkedin.count == 0
