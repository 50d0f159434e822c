from __future__ import annotations

import httpx
import pytest

from tagpipe.destinations.base import REQUEST_KEY, Verdict
from tagpipe.destinations.tiktok import TikTokEvents, TikTokSettings
from tests.destinations.conftest import NOW, deliver, make_event, response, sha, task_for
from tests.fakes import FakeVendors


def tiktok(secrets: dict | None = None, **settings) -> TikTokEvents:
    return TikTokEvents("tt", TikTokSettings(pixel_code="CPIXEL123", **settings), secrets or {"access_token": "TT-TOKEN"})


def test_complete_payment_golden():
    prepared = tiktok().prepare(make_event())
    assert prepared.event_name == "CompletePayment"
    assert prepared.payload == {
        "event": "CompletePayment",
        "event_time": int(NOW - 60),
        "event_id": "evt-0",
        "user": {
            "ttclid": "E.C.P.test-ttclid",
            "external_id": sha("cust-42"),
            "phone": sha("+16505551234"),
            "email": sha("jane.doe@example.com"),
            "ttp": "ttp-cookie-1",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0 (X11; Linux)",
        },
        "page": {"url": "https://shop.example.com/checkout?step=3", "referrer": "https://shop.example.com/cart"},
        "properties": {
            "contents": [
                {"content_type": "product", "content_id": "SKU-1", "content_name": "Shirt", "price": 30.0, "quantity": 2,
                 "content_category": "Apparel", "brand": "Acme"},
                {"content_type": "product", "content_id": "SKU-2", "content_name": "Socks", "price": 12.05, "quantity": 1},
            ],
            "currency": "USD",
            "value": 72.05,
        },
    }
    assert prepared.identifiers == ["ttclid", "external_id", "ph", "em", "ttp", "ip_ua"]


def test_names():
    assert tiktok().prepare(make_event(name="page_view")).event_name == "Pageview"
    assert tiktok().prepare(make_event(name="search", params={"search_term": "shoes"})).payload["properties"]["query"] == "shoes"
    assert tiktok().prepare(make_event(name="my_custom")) is None
    assert tiktok(send_unmapped=True).prepare(make_event(name="my_custom")).event_name == "my_custom"
    assert tiktok(event_map={"generate_lead": "SubmitForm"}).prepare(make_event(name="generate_lead")).event_name == "SubmitForm"
    assert tiktok().prepare(make_event(name="x", vendor_event_name="Contact")).event_name == "Contact"


def test_1001_events_make_two_requests_and_test_codes_split():
    dest = tiktok(test_event_code="TEST9")
    tasks = [task_for(dest, make_event(i)) for i in range(1001)]
    batch = dest.build_requests(tasks)
    assert [len(r.json["data"]) for r in batch.requests] == [1000, 1]
    body = batch.requests[0].json
    assert body["event_source"] == "web" and body["event_source_id"] == "CPIXEL123" and body["test_event_code"] == "TEST9"
    assert REQUEST_KEY not in body["data"][0]
    assert batch.requests[0].url == "https://business-api.tiktok.com/open_api/v1.3/event/track/"
    assert batch.requests[0].headers == {"Access-Token": "TT-TOKEN"}  # no "Bearer"


@pytest.mark.parametrize(
    ("http", "code", "verdict"),
    [
        (200, 0, Verdict.OK),
        (200, 20001, Verdict.OK),
        (200, 40001, Verdict.PERMANENT),
        (200, 40002, Verdict.PERMANENT),
        (200, 40100, Verdict.THROTTLE),
        (200, 40105, Verdict.PERMANENT),
        (200, 40700, Verdict.RETRY),
        (200, 41234, Verdict.PERMANENT),
        (200, 50000, Verdict.RETRY),
        (200, 51021, Verdict.RETRY),
        (500, 40002, Verdict.RETRY),  # an HTTP 5xx is never final
    ],
)
def test_return_code_table(http, code, verdict):
    dest = tiktok()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    result = dest.classify(request, response(http, {"code": code, "message": "m", "request_id": "R1", "data": {}}), None)
    assert result.verdict is verdict
    if verdict is not Verdict.OK:
        assert result.reason == f"tiktok:{code}" and "TT-TOKEN" not in result.detail


def test_http_errors_and_bodies_without_a_code():
    dest = tiktok()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    assert dest.classify(request, response(502, None), None).verdict is Verdict.RETRY
    assert dest.classify(request, response(429, None, {"Retry-After": "3"}), None).retry_after == 3
    assert dest.classify(request, response(200, None), None).reason == "tiktok:no_code"
    assert dest.classify(request, None, httpx.ConnectError("refused")).verdict is Verdict.RETRY


def test_delivers_to_the_fake(fakes: FakeVendors, client, real_now):
    dest = tiktok(secrets=fakes.secrets("tiktok"), endpoint=fakes.url)
    _, results = deliver(dest, [task_for(dest, make_event(i, timestamp=real_now - 5)) for i in range(4)], client)
    assert [r.verdict for _, r in results] == [Verdict.OK]
    assert fakes.tiktok.count == 4 and not fakes.tiktok.duplicates()


def test_fake_answers_errors_with_http_200_and_a_code(fakes: FakeVendors, client, real_now):
    fakes.tiktok.expect_refusal("*")  # the unhashed email and the bad token, on purpose
    dest = tiktok(secrets=fakes.secrets("tiktok"), endpoint=fakes.url)
    good = task_for(dest, make_event(timestamp=real_now - 5))
    unhashed = good.model_copy(update={"payload": {**good.payload, "user": {**good.payload["user"], "email": "jane@example.com"}}})
    _, results = deliver(dest, [unhashed], client)
    assert (results[0][1].verdict, results[0][1].reason) == (Verdict.PERMANENT, "tiktok:40002")
    wrong = tiktok(secrets={"access_token": "nope"}, endpoint=fakes.url)
    _, results = deliver(wrong, [good], client)
    assert (results[0][1].verdict, results[0][1].reason) == (Verdict.PERMANENT, "tiktok:40105")
    fakes.tiktok.throttle_next(1, retry_after=2)
    _, results = deliver(dest, [good], client)
    assert (results[0][1].verdict, results[0][1].retry_after) == (Verdict.THROTTLE, 2)
    assert fakes.tiktok.count == 0
