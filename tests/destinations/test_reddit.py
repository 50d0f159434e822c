"""Reddit Conversions API v3: payload as Reddit's partner template sends it, consent, delivery against the fake."""

from __future__ import annotations

import pytest

from tagpipe.consent import ConsentPolicy
from tagpipe.destinations.base import REQUEST_KEY, Verdict
from tagpipe.destinations.reddit import RedditConversions, RedditSettings
from tagpipe.errors import InvalidInput
from tagpipe.models import ClickIds, ClientContext, Consent, PageContext, UserData
from tests.destinations.conftest import NOW, deliver, make_event, response, sha, task_for
from tests.fakes import FakeVendors


def reddit(secrets: dict | None = None, **settings) -> RedditConversions:
    return RedditConversions("rdt", RedditSettings(pixel_id="a2_fake123", **settings),
                             secrets or {"access_token": "RDT-TOKEN"})  # fmt: skip


def with_reddit_ids(**overrides):
    return make_event(click_ids=ClickIds(rdt_cid="1234_rdt-click", rdt_uuid="1767225000000.8f0b-uuid"), **overrides)


def test_purchase_golden():
    event = with_reddit_ids(client=make_event().client.model_copy(update={"screen_resolution": "1920x1080"}))
    prepared = reddit().prepare(event)
    assert prepared.event_name == "PURCHASE"
    assert prepared.payload == {
        "event_at": int((NOW - 60) * 1000),  # milliseconds
        "action_source": "WEBSITE",
        "type": {"tracking_type": "PURCHASE"},
        "click_id": "1234_rdt-click",
        "metadata": {
            "conversion_id": "evt-0",  # dedup with the pixel's conversionId
            "currency": "USD",
            "value": 72.05,
            "item_count": 3,
            "products": [{"id": "SKU-1", "name": "Shirt", "category": "Apparel"}, {"id": "SKU-2", "name": "Socks"}],
        },
        "user": {
            "email": sha("jane.doe@example.com"),
            "phone_number": sha("+16505551234"),
            "external_id": sha("cust-42"),
            "uuid": "8f0b-uuid",  # the uuid part of _rdt_uuid
            "ip_address": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (X11; Linux)",
            "screen_dimensions": {"width": 1920, "height": 1080},
        },
    }
    assert prepared.identifiers == ["rdt_cid", "em", "ph", "external_id", "rdt_uuid", "ip_ua"]


def test_custom_events_ldu_and_identifiers():
    custom = reddit(send_unmapped=True).prepare(make_event(name="quote_requested"))
    assert custom.payload["type"] == {"tracking_type": "CUSTOM", "custom_event_name": "quote_requested"}
    assert reddit().prepare(make_event(name="quote_requested")) is None
    ldu = reddit().prepare(make_event(consent=Consent(ad_storage=True, ad_user_data=True, limited_data_use=True)))
    assert ldu.payload["user"]["data_processing_options"] == {"modes": ["LDU"]}
    with pytest.raises(InvalidInput) as raised:
        reddit().prepare(make_event(user_data=UserData(), client=ClientContext(ip="203.0.113.7")))
    assert raised.value.code == "reddit:no_identifier"


def test_consent():
    policy = ConsentPolicy()
    no_storage = with_reddit_ids(consent=Consent(ad_storage=False, ad_user_data=True))
    payload = reddit().prepare(policy.decide(no_storage, "reddit", []).apply(no_storage)).payload
    assert "click_id" not in payload and "uuid" not in payload["user"]
    landing = with_reddit_ids(consent=Consent(ad_storage=False, ad_user_data=True),
                              page=PageContext(url="https://shop.example.com/?rdt_cid=1234_rdt-click"))
    payload = reddit().prepare(policy.decide(landing, "reddit", []).apply(landing)).payload
    assert payload["click_id"] == "1234_rdt-click"
    no_data = with_reddit_ids(consent=Consent(ad_storage=True, ad_user_data=False))
    user = reddit().prepare(policy.decide(no_data, "reddit", []).apply(no_data)).payload["user"]
    assert not {"email", "phone_number", "external_id"} & set(user)


@pytest.mark.parametrize(("status", "verdict", "reason"), [
    (200, Verdict.OK, "ok"), (400, Verdict.PERMANENT, "http:400"), (401, Verdict.PERMANENT, "reddit:auth"),
    (403, Verdict.PERMANENT, "reddit:auth"), (429, Verdict.THROTTLE, "reddit:throttled"), (502, Verdict.RETRY, "http:502"),
])  # fmt: skip
def test_error_table(status, verdict, reason):
    dest = reddit()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    result = dest.classify(request, response(status, {"error": {"message": "x", "field": "data.events[0]"}}), None)
    assert (result.verdict, result.reason) == (verdict, reason)


def test_test_ids_split_requests_and_batches_at_1000():
    dest = reddit(test_event_code="t2_test")
    tasks = [task_for(dest, make_event(i)) for i in range(1001)]
    tasks.append(task_for(dest, make_event(2000, test_event_code="other")))
    batch = dest.build_requests(tasks)
    assert [len(r.json["data"]["events"]) for r in batch.requests] == [1000, 1, 1]
    assert [r.json["data"].get("test_id") for r in batch.requests] == ["t2_test", "t2_test", "other"]
    assert REQUEST_KEY not in batch.requests[0].json["data"]["events"][0]
    assert batch.requests[0].url == "https://ads-api.reddit.com/api/v3/pixels/a2_fake123/conversion_events"
    assert batch.requests[0].headers == {"Authorization": "Bearer RDT-TOKEN"}


def test_delivery(fakes: FakeVendors, client, real_now):
    dest = reddit(secrets=fakes.secrets("reddit"), endpoint=fakes.url)
    tasks = [task_for(dest, with_reddit_ids(event_id=f"evt-{i}", event_uid=f"h{i}:0", timestamp=real_now - 5))
             for i in range(1001)]  # fmt: skip
    batch, results = deliver(dest, tasks, client)
    assert [r.verdict for _, r in results] == [Verdict.OK, Verdict.OK]
    assert fakes.reddit.count == 1001 and not fakes.reddit.duplicates()


def test_bad_event_token_throttle_and_test_id(fakes: FakeVendors, client, real_now):
    fakes.reddit.expect_refusal("token", "event refused (marked bad)")
    dest = reddit(secrets=fakes.secrets("reddit"), endpoint=fakes.url)
    fakes.reddit.mark_bad("evt-1")
    _, [(_, result)] = deliver(dest, [task_for(dest, make_event(i, timestamp=real_now - 5)) for i in range(2)], client)
    assert result.verdict is Verdict.PERMANENT and "data.events[1]" in result.detail
    task = task_for(dest, make_event(timestamp=real_now - 5))
    _, [(_, result)] = deliver(reddit(secrets={"access_token": "nope"}, endpoint=fakes.url), [task], client)
    assert result.reason == "reddit:auth"
    fakes.reddit.throttle_next(1, retry_after=4)
    _, [(_, result)] = deliver(dest, [task], client)
    assert (result.verdict, result.retry_after) == (Verdict.THROTTLE, 4)
    tester = reddit(secrets=fakes.secrets("reddit"), endpoint=fakes.url, test_event_code="t2_check")
    _, [(_, result)] = deliver(tester, [task_for(tester, make_event(timestamp=real_now - 5))], client)
    assert result.verdict is Verdict.OK and fakes.reddit.validated == 1 and fakes.reddit.count == 0
