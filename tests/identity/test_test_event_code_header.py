"""A Test Events code per hit from a request header (x-tagpipe-test-event-code): collect keeps it, the
events carry it unless they name their own, Meta and TikTok send it, and a malformed one is refused."""

from __future__ import annotations

import json

from tagpipe.destinations.base import REQUEST_KEY
from tagpipe.destinations.meta import MetaCapi, MetaSettings
from tagpipe.parsing import TEST_EVENT_CODE_HEADER, parse_hit

PURCHASE = json.dumps({"events": [
    {"event_name": "purchase", "event_id": "T-1", "page_location": "https://shop.example.co.uk/thanks"},
    {"event_name": "purchase", "event_id": "T-2", "page_location": "https://shop.example.co.uk/thanks",
     "test_event_code": "TEST_OWN"},
]})  # fmt: skip


def test_the_header_reaches_the_events_and_metas_request(collect):
    r = collect.post_json(PURCHASE, headers={TEST_EVENT_CODE_HEADER: "TEST12345"})
    assert r.status_code == 200, r.text
    [raw] = collect.published()
    first, second = parse_hit(raw)
    assert (first.test_event_code, second.test_event_code) == ("TEST12345", "TEST_OWN")  # an event's own wins
    meta = MetaCapi("meta", MetaSettings(pixel_id="1", test_event_code="TEST_DESTINATION"), {"access_token": "t"})
    assert meta.prepare(first).payload[REQUEST_KEY] == {"test_event_code": "TEST12345"}  # the hit's over the config's


def test_a_malformed_header_is_refused_with_a_reason(collect):
    r = collect.post_json(PURCHASE, headers={TEST_EVENT_CODE_HEADER: "TEST 1; drop"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_field" and TEST_EVENT_CODE_HEADER in r.json()["reason"]
    assert collect.published() == []


def test_browsers_may_send_it_cross_origin(collect):
    r = collect.http.options("/events", headers={"origin": "https://shop.example.co.uk",
                                                 "access-control-request-method": "POST",
                                                 "access-control-request-headers": TEST_EVENT_CODE_HEADER})  # fmt: skip
    assert TEST_EVENT_CODE_HEADER in r.headers["access-control-allow-headers"]
