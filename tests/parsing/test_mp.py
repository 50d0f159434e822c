"""GA4 Measurement Protocol (/mp/collect) rules."""

from __future__ import annotations

import json

import pytest

from tagpipe.parsing import MAX_ITEMS_PER_EVENT, MAX_PARAMS_PER_EVENT, MAX_VALUE_BYTES, parse_hit

from .helpers import mp_hit, one, refused

SHA = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"


def body(**kw: object) -> dict:
    b: dict = {"client_id": "123.456", "events": [{"name": "purchase", "params": {}}]}
    b.update(kw)
    return b


def test_measurement_id_from_query_and_api_secret_never_kept() -> None:
    ev = one(mp_hit(body(), query="measurement_id=G-XYZ&api_secret=very-secret-value"))
    assert ev.measurement_id == "G-XYZ"
    assert "very-secret-value" not in json.dumps(ev.model_dump(mode="json"))
    assert (
        one(mp_hit(body(), query="firebase_app_id=1%3A23%3Aandroid%3Aab&api_secret=x")).measurement_id
        == "1:23:android:ab"
    )


def test_client_and_app_instance_ids() -> None:
    ev = one(mp_hit(body(user_id="u1")))
    assert (ev.client.client_id, ev.client.user_id, ev.action_source) == ("123.456", "u1", "website")
    ev = one(mp_hit({"app_instance_id": "abc", "events": [{"name": "x"}]}))
    assert (ev.client.client_id, ev.action_source) == ("abc", "app")
    refused(mp_hit({"user_id": "u", "events": [{"name": "x"}]}), "missing_client_id")
    refused(mp_hit({"client_id": "", "events": [{"name": "x"}]}), "missing_client_id")
    refused(mp_hit({"client_id": ["a"], "events": [{"name": "x"}]}), "invalid_field")


@pytest.mark.parametrize("events", [None, [], {}, "x"])
def test_events_required(events: object) -> None:
    b = {"client_id": "1"}
    if events is not None:
        b["events"] = events
    refused(mp_hit(b), "missing_events")


@pytest.mark.parametrize("event", [{"params": {}}, {"name": ""}, {"name": "  "}, {"name": 5}])
def test_event_name_required(event: dict) -> None:
    err = refused(mp_hit(body(events=[{"name": "ok"}, event])), "missing_event_name")
    assert "events[1].name" in err.message


def test_event_must_be_an_object() -> None:
    refused(mp_hit(body(events=["page_view"])), "invalid_field")


@pytest.mark.parametrize("text", ["", "{", "[1]", "null", '"x"', '{"client_id": NaN}', "[" * 100_000])
def test_invalid_json(text: str) -> None:
    refused(mp_hit(text), "invalid_json")


def test_params_session_page_and_custom() -> None:
    params = {
        "session_id": 1700000000,
        "engagement_time_msec": "250",
        "page_location": "https://a.example/p?gclid=G1",
        "page_referrer": "https://r.example/",
        "page_title": "T",
        "method": "google",
        "count": 3,
        "ok": True,
        "none": None,
    }
    ev = one(mp_hit(body(events=[{"name": "login", "params": params}])))
    assert (ev.client.session_id, ev.client.engagement_time_msec) == ("1700000000", 250)
    assert (ev.page.url, ev.page.referrer, ev.page.title) == (
        "https://a.example/p?gclid=G1",
        "https://r.example/",
        "T",
    )
    assert ev.click_ids.gclid == "G1"
    assert ev.params == {"method": "google", "count": 3, "ok": True, "none": None}


def test_ecommerce_and_items() -> None:
    params = {
        "currency": "eur",
        "value": "72.05",
        "transaction_id": 1001,
        "tax": 1,
        "shipping": 2.5,
        "coupon": "C",
        "items": [
            {"item_id": 1, "item_name": "Tee", "price": "10.5", "quantity": 2, "index": 0, "color": "red"}
        ],
    }
    ev = one(mp_hit(body(events=[{"name": "purchase", "params": params}])))
    e = ev.ecommerce
    assert (e.currency, e.value, e.transaction_id, e.tax, e.shipping, e.coupon) == (
        "EUR",
        72.05,
        "1001",
        1.0,
        2.5,
        "C",
    )
    assert e.items[0].model_dump(exclude_none=True) == {
        "item_id": "1",
        "item_name": "Tee",
        "price": 10.5,
        "quantity": 2.0,
        "index": 0,
        "custom": {"color": "red"},
    }
    assert ev.params == {}


@pytest.mark.parametrize(
    "params",
    [
        {"value": "lots"},
        {"value": True},
        {"items": {"item_id": "x"}},
        {"items": ["x"]},
        {"items": [{"price": "free"}]},
        {"items": [{"index": 1.5}]},
        {"items": [{"item_id": {"a": 1}}]},
        {"items": [{"custom": [1]}]},
        {"nested": {"a": 1}},
        {"list": [1]},
        {"currency": 978},
    ],
)
def test_bad_params(params: dict) -> None:
    err = refused(mp_hit(body(events=[{"name": "x", "params": params}])), "invalid_field")
    assert err.message.startswith("events[0].params.")


def test_limits() -> None:
    many = {f"p{i}": 1 for i in range(MAX_PARAMS_PER_EVENT + 1)}
    refused(mp_hit(body(events=[{"name": "x", "params": many}])), "too_many_params", 413)
    items = [{"item_id": str(i)} for i in range(MAX_ITEMS_PER_EVENT + 1)]
    refused(mp_hit(body(events=[{"name": "x", "params": {"items": items}}])), "too_many_items", 413)
    refused(
        mp_hit(body(events=[{"name": "x", "params": {"big": "x" * (MAX_VALUE_BYTES + 1)}}])),
        "value_too_large",
        413,
    )


def test_user_properties() -> None:
    ev = one(
        mp_hit(
            body(
                user_properties={"tier": {"value": "gold"}, "ltv": {"value": 9.5, "set_timestamp_micros": 1}}
            )
        )
    )
    assert ev.user_properties == {"tier": "gold", "ltv": 9.5}
    refused(mp_hit(body(user_properties={"tier": "gold"})), "invalid_field")
    refused(mp_hit(body(user_properties=["tier"])), "invalid_field")


def test_consent() -> None:
    c = one(mp_hit(body(consent={"ad_user_data": "GRANTED", "ad_personalization": "denied"}))).consent
    assert (c.ad_user_data, c.ad_personalization, c.ad_storage) == (True, False, None)
    assert c.raw == {"ad_user_data": "GRANTED", "ad_personalization": "denied"}
    refused(mp_hit(body(consent={"ad_user_data": "yes"})), "invalid_field")
    c = one(mp_hit(body(non_personalized_ads=True))).consent
    assert (c.non_personalized_ads, c.ad_personalization) == (True, False)
    refused(mp_hit(body(non_personalized_ads="true")), "invalid_field")


def test_user_data_prehashed_values() -> None:
    ud = {
        "sha256_email_address": [SHA, "f" * 64],
        "sha256_phone_number": SHA,
        "address": [{"sha256_first_name": SHA, "sha256_street": SHA, "city": "paris", "country": "FR"}],
    }
    u = one(mp_hit(body(user_data=ud))).user_data
    assert (u.email, u.phone) == (SHA, SHA)
    assert u.address.model_dump(exclude_none=True) == {
        "first_name": SHA,
        "street": SHA,
        "city": "paris",
        "country": "FR",
    }
    refused(mp_hit(body(user_data={"address": ["x"]})), "invalid_field")
    refused(mp_hit(body(user_data={"sha256_email_address": [1]})), "invalid_field")


def test_location_and_device() -> None:
    b = body(
        user_location={"city": "Lyon", "region_id": "FR-ARA", "country_id": "FR"},
        device={
            "language": "fr",
            "screen_resolution": "1x1",
            "model": "Pixel 8",
            "operating_system": "Android",
        },
    )
    ev = one(mp_hit(b, headers={"x-client-geo-country": "DE", "x-client-geo-city": "Berlin"}))
    assert ev.client.geo == {"country": "FR", "region": "FR-ARA", "city": "Lyon"}
    assert (ev.client.language, ev.client.screen_resolution) == ("fr", "1x1")
    assert ev.client.client_hints == {"model": "Pixel 8", "platform": "Android"}


def test_experiments_and_event_level_fields() -> None:
    params = {
        "experiment_id": "e1",
        "variant_id": "v2",
        "exp_banner": "b",
        "experiments": {"e3": "c"},
        "test_event_code": "T1",
        "event_id": 9,
    }
    ev = one(mp_hit(body(events=[{"name": "x", "params": params}])))
    assert ev.experiments == {"e1": "v2", "banner": "b", "e3": "c"}
    assert (ev.test_event_code, ev.event_id, ev.params) == ("T1", "9", {})


def test_unknown_top_level_keys_are_ignored() -> None:
    assert (
        one(mp_hit(body(validation_behavior="ENFORCE_RECOMMENDATIONS", something_new={"a": 1}))).name
        == "purchase"
    )


def test_each_event_of_a_request() -> None:
    events = parse_hit(mp_hit(body(events=[{"name": "a"}, {"name": "b", "params": {"x": 1}}])))
    assert [(e.name, e.event_uid, e.params) for e in events] == [("a", "m1:0", {}), ("b", "m1:1", {"x": 1})]


def test_several_hashed_emails_and_phones_are_all_kept() -> None:
    emails, phones = ["a" * 64, "b" * 64, "c" * 64], ["d" * 64, "e" * 64]
    u = one(mp_hit(body(user_data={"sha256_email_address": emails, "sha256_phone_number": phones}))).user_data
    assert (u.email, u.other_emails, u.phone, u.other_phones) == (emails[0], emails[1:], phones[0], phones[1:])
    assert one(mp_hit(body(user_data={"sha256_email_address": "a" * 64}))).user_data.other_emails == []
    refused(mp_hit(body(user_data={"sha256_email_address": ["a" * 64, 5]})), "invalid_field")
