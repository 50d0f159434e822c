from __future__ import annotations

import json

import pytest

from tagpipe.destinations.base import REQUEST_KEY, Verdict
from tagpipe.destinations.ga4 import Ga4MeasurementProtocol, Ga4Settings
from tagpipe.errors import InvalidInput
from tagpipe.models import ClientContext, Consent, Item
from tests.destinations.conftest import NOW, deliver, make_event, response, sha, task_for
from tests.fakes import FakeVendors


def ga4(now: float | None = NOW, secrets: dict | None = None, **settings) -> Ga4MeasurementProtocol:
    dest = Ga4MeasurementProtocol("ga4", Ga4Settings(measurement_id="G-TEST123", **settings), secrets or {"api_secret": "SECRET-1"})
    if now is not None:
        dest.now = lambda: now  # type: ignore[method-assign]
    return dest


def test_purchase_golden():
    prepared = ga4().prepare(make_event())
    assert prepared.event_name == "purchase"
    assert prepared.payload == {
        "name": "purchase",
        "params": {
            "session_id": "1767225000",
            "engagement_time_msec": 1200,
            "page_location": "https://shop.example.com/checkout?step=3",
            "page_referrer": "https://shop.example.com/cart",
            "page_title": "Checkout",
            "currency": "USD",
            "value": 72.05,
            "transaction_id": "T-0",
            "items": [
                {"item_id": "SKU-1", "item_name": "Shirt", "item_brand": "Acme", "item_category": "Apparel", "price": 30.0, "quantity": 2},
                {"item_id": "SKU-2", "item_name": "Socks", "price": 12.05, "quantity": 1},
            ],
            "coupon_code": "SUMMER",
        },
        "timestamp_micros": int((NOW - 60) * 1_000_000),
        REQUEST_KEY: {
            "client_id": "1234567.7654321",
            "user_id": "user-42",
            "consent": {"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"},
            "user_data": {
                "sha256_email_address": [sha("jane.doe@example.com")],
                "sha256_phone_number": [sha("+16505551234")],  # E.164 with "+": Google, not Meta
                "address": [{
                    "sha256_first_name": sha("jane"), "sha256_last_name": sha("doe"), "sha256_street": sha("1 main st"),
                    "city": "san francisco", "region": "ca", "postal_code": "94107", "country": "US",  # not hashed
                }],
            },
            "ip_override": "203.0.113.7",  # GA4 geolocates the visitor, not the server
        },
    }
    assert prepared.identifiers == ["client_id", "user_id", "em", "ph", "fn", "ln"]
    assert prepared.notes == []


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("_private", "ga4:NAME_RESERVED"),
        ("firebase_thing", "ga4:NAME_RESERVED"),
        ("google_x", "ga4:NAME_RESERVED"),
        ("session_start", "ga4:NAME_RESERVED"),
        ("first_visit", "ga4:NAME_RESERVED"),
        ("notification_open", "ga4:NAME_RESERVED"),
        ("1st_event", "ga4:NAME_INVALID"),
        ("has-dash", "ga4:NAME_INVALID"),
        ("x" * 41, "ga4:NAME_INVALID"),
    ],
)
def test_bad_event_names_are_rejected_with_the_validation_code(name, code):
    with pytest.raises(InvalidInput) as exc:
        ga4().prepare(make_event(name=name))
    assert exc.value.code == code


def test_a_40_char_name_is_fine_and_event_map_renames():
    assert ga4().prepare(make_event(name="x" * 40)).event_name == "x" * 40
    assert ga4(event_map={"purchase": "order_completed"}).prepare(make_event()).event_name == "order_completed"


def test_client_id_is_required_for_web():
    with pytest.raises(InvalidInput) as exc:
        ga4().prepare(make_event(client=ClientContext(user_id="u1")))
    assert exc.value.code == "ga4:client_id_missing"


def test_values_are_truncated_and_bad_params_dropped_on_record():
    event = make_event(params={"note": "n" * 150, "x" * 41: "long name", "_internal": 1, "firebase_conversion": 1})
    event.page = event.page.model_copy(update={"title": "t" * 400, "url": "https://e.com/" + "p" * 1200})
    prepared = ga4().prepare(event)
    params = prepared.payload["params"]
    assert len(params["note"]) == 100 and len(params["page_title"]) == 300 and len(params["page_location"]) == 1000
    assert "_internal" not in params and "firebase_conversion" not in params and "x" * 41 not in params
    assert set(prepared.notes) == {
        "ga4:value_truncated:note", "ga4:value_truncated:page_title", "ga4:value_truncated:page_location",
        f"ga4:param_dropped:NAME_INVALID:{'x' * 41}", "ga4:param_dropped:NAME_RESERVED:_internal",
        "ga4:param_dropped:NAME_RESERVED:firebase_conversion",
    }


def test_more_than_25_params_keeps_a_deterministic_first_25():
    params = {f"p{i:02d}": i for i in range(30)}
    prepared = ga4().prepare(make_event(params=params))
    kept = prepared.payload["params"]
    assert len(kept) == 25
    # canonical params first (session 2, page 3, ecommerce 4 here), then custom ones by name
    assert [k for k in kept if k.startswith("p") and k[1:].isdigit()] == [f"p{i:02d}" for i in range(16)]
    assert "ga4:params_dropped_over_limit:14" in prepared.notes  # p16..p29


def test_user_properties_limits():
    prepared = ga4().prepare(make_event(user_properties={"tier": "g" * 50, "n" * 25: "x", "first_open_time": 1, "ok": 3}))
    props = prepared.payload[REQUEST_KEY]["user_properties"]
    assert props == {"ok": {"value": 3}, "tier": {"value": "g" * 36}}
    assert {"ga4:value_truncated:user_property.tier", f"ga4:user_property_dropped:NAME_INVALID:{'n' * 25}",
            "ga4:user_property_dropped:NAME_RESERVED:first_open_time"} <= set(prepared.notes)


def test_no_user_data_without_ad_user_data_consent():
    prepared = ga4().prepare(make_event(consent=Consent(analytics_storage=True, ad_user_data=False, ad_personalization=False)))
    request = prepared.payload[REQUEST_KEY]
    assert "user_data" not in request and request["consent"] == {"ad_user_data": "DENIED", "ad_personalization": "DENIED"}
    assert "ga4:user_data_withheld_no_consent" in prepared.notes and "em" not in prepared.identifiers


def test_debug_events_show_in_debugview():
    assert ga4().prepare(make_event(debug=True)).payload["params"]["debug_mode"] is True


# --------------------------------------------------------------------------- batching
def test_26_events_of_one_user_make_two_requests():
    dest = ga4()
    batch = dest.build_requests([task_for(dest, make_event(i)) for i in range(26)])
    assert [len(r.json["events"]) for r in batch.requests] == [25, 1]
    body = batch.requests[0].json
    assert body["client_id"] == "1234567.7654321" and REQUEST_KEY not in body["events"][0]
    assert "SECRET-1" not in batch.requests[0].masked_url and "api_secret=***" in batch.requests[0].masked_url
    assert batch.requests[0].url.startswith("https://www.google-analytics.com/mp/collect?measurement_id=G-TEST123")


def test_requests_are_one_user_each():
    dest = ga4()
    events = [make_event(i, client=ClientContext(client_id=f"{i % 3}.1")) for i in range(6)]
    batch = dest.build_requests([task_for(dest, e) for e in events])
    assert sorted((r.json["client_id"], len(r.json["events"])) for r in batch.requests) == [("0.1", 2), ("1.1", 2), ("2.1", 2)]


def test_bodies_stay_under_130kb():
    dest = ga4()
    big_items = [Item(item_id=f"S{j}", item_name="n" * 100, item_category="c" * 100, item_brand="b" * 100,
                      item_variant="v" * 100, item_list_name="l" * 100) for j in range(100)]
    events = [make_event(i, ecommerce=make_event().ecommerce.model_copy(update={"items": big_items})) for i in range(5)]
    batch = dest.build_requests([task_for(dest, e) for e in events])
    sizes = [len(json.dumps(r.json, separators=(",", ":")).encode()) for r in batch.requests]
    assert len(batch.requests) > 1 and max(sizes) <= 130_000
    assert sum(len(r.event_uids) for r in batch.requests) == 5 and not batch.rejected


def test_72_hour_rule_in_prepare_and_at_send_time():
    with pytest.raises(InvalidInput) as exc:
        ga4().prepare(make_event(timestamp=NOW - 72 * 3600 - 1))
    assert exc.value.code == "ga4:event_too_old"
    dest = ga4()
    task = task_for(dest, make_event(timestamp=NOW - 71 * 3600))
    dest.now = lambda: NOW + 3600
    batch = dest.build_requests([task])
    assert [r.reason for r in batch.rejected] == ["ga4:event_too_old"] and not batch.requests


# --------------------------------------------------------------------------- classify
def test_mp_collect_is_always_2xx_and_http_errors_still_classify():
    dest = ga4()
    request = dest.build_requests([task_for(dest, make_event())]).requests[0]
    assert dest.classify(request, response(204), None).verdict is Verdict.OK
    assert dest.classify(request, response(503), None).verdict is Verdict.RETRY
    assert dest.classify(request, response(429, headers={"Retry-After": "7"}), None).retry_after == 7


def test_validation_messages_become_per_event_verdicts():
    dest = ga4(validate_only=True)
    batch = dest.build_requests([task_for(dest, make_event(i)) for i in range(3)])
    request = batch.requests[0]
    assert "/debug/mp/collect?" in request.url
    answer = response(200, {"validationMessages": [
        {"fieldPath": "events[1].params.note", "description": "Value [secret] too long", "validationCode": "VALUE_OUT_OF_BOUNDS"},
        {"fieldPath": "events", "description": "Event at index: [2] has invalid name [_x].", "validationCode": "NAME_RESERVED"},
    ]})
    result = dest.classify(request, answer, None)
    assert result.verdict is Verdict.OK
    assert result.per_event == {
        "hit1:0": (Verdict.PERMANENT, "ga4:VALUE_OUT_OF_BOUNDS", "events[1].params.note: VALUE_OUT_OF_BOUNDS"),
        "hit2:0": (Verdict.PERMANENT, "ga4:NAME_RESERVED", "events: NAME_RESERVED"),
    }
    whole = dest.classify(request, response(200, {"validationMessages": [
        {"fieldPath": "client_id", "description": "", "validationCode": "VALUE_REQUIRED"}]}), None)
    assert (whole.verdict, whole.reason) == (Verdict.PERMANENT, "ga4:VALUE_REQUIRED")


# --------------------------------------------------------------------------- integration with the fake
def test_delivers_26_events_to_the_fake_in_two_requests(fakes: FakeVendors, client, real_now):
    dest = ga4(now=None, endpoint=fakes.url, secrets=fakes.secrets("ga4"))
    batch, results = deliver(dest, [task_for(dest, make_event(i, timestamp=real_now - 10)) for i in range(26)], client)
    assert len(batch.requests) == 2 and all(r.verdict is Verdict.OK for _, r in results)
    assert fakes.ga4.count == 26 and not fakes.ga4.refused


def test_validation_server_finds_what_mp_collect_would_silently_drop(fakes: FakeVendors, client, real_now):
    plain = ga4(now=None, endpoint=fakes.url, secrets=fakes.secrets("ga4"))
    good = task_for(plain, make_event(0, timestamp=real_now - 10))
    bad = good.model_copy(update={"event_uid": "bad:0", "payload": {
        **good.payload, "params": {**good.payload["params"], "_reserved": 1}}})
    _, results = deliver(plain, [good, bad], client)
    assert results[0][1].verdict is Verdict.OK  # 204 all the same...
    assert fakes.ga4.count == 1 and fakes.ga4.refused[0]["reason"] == "event"  # ...but GA4 dropped one

    checked = ga4(now=None, endpoint=fakes.url, secrets=fakes.secrets("ga4"), validate_only=True)
    _, results = deliver(checked, [good, bad], client)
    result = results[0][1]
    assert result.per_event == {"bad:0": (Verdict.PERMANENT, "ga4:NAME_RESERVED", "events[1].params._reserved: NAME_RESERVED")}
    assert fakes.ga4.count == 1  # the validation server records nothing


# --------------------------------------------------------------------------- geo and device
GTAG_HIT = (
    "v=2&tid=G-TEST123&cid=1234567.7654321&en=page_view&dl=https%3A%2F%2Fshop.example%2F&ul=de-de&sr=390x844"
    "&uamb=1&uap=Android&uapv=14.0.0&uam=Pixel%208&uafvl=Not_A%2520Brand%3B8.0.0.0%7CChromium%3B140.0.7339.128"
    "%7CGoogle%2520Chrome%3B140.0.7339.128&gcs=G111"
)


def test_a_gtag_hit_keeps_its_geo_and_device_at_ga4():
    from tagpipe.models import RawHit
    from tagpipe.parsing import parse_hit

    raw = RawHit(source="gtag", method="GET", path="/g/collect", query=GTAG_HIT, client_ip="2a03:2880:f12f:83::25de",
                 headers={"user-agent": "Mozilla/5.0 (Linux; Android 14)", "x-client-geo-country": "DE",
                          "x-client-geo-region": "DE-BY", "x-client-geo-city": "Munich"})  # fmt: skip
    [event] = parse_hit(raw)
    request = ga4().prepare(event).payload[REQUEST_KEY]
    assert request["ip_override"] == "2a03:2880:f12f:83::25de"
    assert request["user_location"] == {"city": "Munich", "country_id": "DE", "region_id": "DE-BY"}
    assert request["device"] == {
        "category": "mobile", "language": "de-de", "screen_resolution": "390x844", "operating_system": "Android",
        "operating_system_version": "14.0.0", "model": "Pixel 8", "browser": "Google Chrome",
        "browser_version": "140.0.7339.128",
    }  # fmt: skip
    assert "device" not in ga4(send_client_context=False).prepare(event).payload[REQUEST_KEY]


def test_an_mp_hit_forwards_the_geo_and_device_it_was_given():
    from tagpipe.models import RawHit
    from tagpipe.parsing import parse_hit

    body = {
        "client_id": "1.2", "ip_override": "157.240.22.35",
        "user_location": {"city": "Mountain View", "region_id": "US-CA", "country_id": "US"},
        "device": {"category": "desktop", "language": "en", "screen_resolution": "1280x2048",
                   "operating_system": "MacOS", "operating_system_version": "14.4", "model": "MacBookPro"},
        "events": [{"name": "sign_up", "params": {"engagement_time_msec": 10}}],
    }  # fmt: skip
    raw = RawHit(source="mp", path="/mp/collect", query="measurement_id=G-TEST123", body=json.dumps(body))
    [event] = parse_hit(raw)
    request = ga4().prepare(event).payload[REQUEST_KEY]
    assert request["ip_override"] == body["ip_override"]
    assert request["user_location"] == body["user_location"]
    sent = request["device"]
    assert {k: sent.get(k) for k in ("language", "screen_resolution", "operating_system", "operating_system_version",
                                     "model")} == {k: v for k, v in body["device"].items() if k != "category"}


def test_the_validation_server_fake_takes_the_geo_and_device_fields(fakes: FakeVendors, client, real_now):
    event = make_event(timestamp=real_now - 5)
    event.client = event.client.model_copy(update={"geo": {"country": "US", "region": "CA"}, "language": "en-us",
                                                   "client_hints": {"mobile": "?0", "platform": "Windows"}})
    dest = ga4(now=None, endpoint=fakes.url, validate_only=True, secrets=fakes.secrets("ga4"))
    _, [(request, result)] = deliver(dest, [task_for(dest, event)], client)
    assert result.verdict is Verdict.OK and not result.per_event, result
    assert request.json["user_location"] == {"country_id": "US", "region_id": "US-CA"}
    assert request.json["device"] == {"category": "desktop", "language": "en-us", "operating_system": "Windows"}
