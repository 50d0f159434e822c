"""Our JSON API (POST /events): strict input, clear errors."""

from __future__ import annotations

import pytest

from tagpipe.parsing import MAX_PARAMS_PER_EVENT, MAX_VALUE_BYTES, parse_hit

from .helpers import json_hit, one, refused


def test_three_shapes() -> None:
    assert [e.name for e in parse_hit(json_hit({"event_name": "a"}))] == ["a"]
    assert [e.name for e in parse_hit(json_hit([{"event_name": "a"}, {"event_name": "b"}]))] == ["a", "b"]
    assert [e.name for e in parse_hit(json_hit({"events": [{"event_name": "a"}, {"event_name": "b"}]}))] == [
        "a",
        "b",
    ]


@pytest.mark.parametrize("text", ["", "   ", "[]", '{"events": []}'])
def test_nothing_to_parse(text: str) -> None:
    refused(json_hit(text), "missing_events")


@pytest.mark.parametrize(
    "text",
    ["{", '{"event_name": "x",}', "NaN", '{"event_name": "x", "value": Infinity}', "[" * 100_000, "1" * 5000],
)
def test_invalid_json(text: str) -> None:
    refused(json_hit(text), "invalid_json")


@pytest.mark.parametrize("text", ["1", '"x"', "null", "true"])
def test_body_must_be_an_object_or_list(text: str) -> None:
    refused(json_hit(text), "invalid_json")


def test_list_members_must_be_objects() -> None:
    err = refused(json_hit([{"event_name": "a"}, "b"]), "invalid_field")
    assert "[1]" in err.message


def test_wrapper_takes_only_events() -> None:
    err = refused(json_hit({"events": [{"event_name": "a"}], "client_id": "1"}), "unknown_field")
    assert "client_id" in err.message
    refused(json_hit({"events": {"event_name": "a"}}), "invalid_field")


def test_unknown_field_named_with_path_and_hint() -> None:
    err = refused(
        json_hit({"events": [{"event_name": "a"}, {"event_name": "b", "email": "jane@example.com"}]}),
        "unknown_field",
    )
    assert "events[1].email" in err.message and "user_data.email" in err.message
    assert "jane" not in err.message
    err = refused(json_hit({"event_name": "a", "user_data": {"emial": "jane@example.com"}}), "unknown_field")
    assert "user_data.emial" in err.message and "jane" not in err.message


def test_missing_or_empty_event_name() -> None:
    err = refused(json_hit([{"event_id": "1"}]), "missing_event_name")
    assert "[0].event_name" in err.message
    refused(json_hit({"event_name": "  "}), "missing_event_name")
    refused(json_hit({"event_name": None}), "invalid_field")


@pytest.mark.parametrize(
    ("event", "path"),
    [
        ({"value": "lots"}, "value"),
        ({"value": True}, "value"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": 978}, "currency"),
        ({"action_source": "web"}, "action_source"),
        ({"consent": {"ad_storage": "yes"}}, "consent.ad_storage"),
        ({"items": [{"price": "free"}]}, "items[0].price"),
        ({"items": [{"index": 1.5}]}, "items[0].index"),
        ({"items": [{"colors": ["red"]}]}, "items[0]"),
        ({"items": {"item_id": "x"}}, "items"),
        ({"params": {"a": {"b": 1}}}, "params"),
        ({"params": []}, "params"),
        ({"user_properties": {"a": [1]}}, "user_properties"),
        ({"experiments": {"e": ["a"]}}, "experiments.e"),
        ({"user_data": {"email": 5}}, "user_data.email"),
        ({"click_ids": {"gclid": 5}}, "click_ids.gclid"),
        ({"session_id": 1.5}, "session_id"),
        ({"event_id": True}, "event_id"),
    ],
)
def test_invalid_fields_name_the_path(event: dict, path: str) -> None:
    err = refused(json_hit({"event_name": "x", **event}), "invalid_field")
    assert err.message.startswith(path), err.message


def test_paths_in_a_list_and_a_wrapper() -> None:
    assert refused(
        json_hit([{"event_name": "a"}, {"event_name": "b", "value": "x"}]), "invalid_field"
    ).message.startswith("[1].value")
    assert refused(
        json_hit({"events": [{"event_name": "b", "value": "x"}]}), "invalid_field"
    ).message.startswith("events[0].value")


@pytest.mark.parametrize(
    "key", ["value", "currency", "items", "event_id", "page_location", "experiment_id", "transaction_id"]
)
def test_reserved_params_point_to_the_top_level_field(key: str) -> None:
    err = refused(json_hit({"event_name": "x", "params": {key: "1"}}), "invalid_field")
    assert f"params.{key}" in err.message and f"'{key}'" in err.message


def test_limits() -> None:
    refused(
        json_hit({"event_name": "x", "params": {f"p{i}": 1 for i in range(MAX_PARAMS_PER_EVENT + 1)}}),
        "too_many_params",
        413,
    )
    refused(json_hit({"event_name": "x", "page_title": "x" * (MAX_VALUE_BYTES + 1)}), "value_too_large", 413)
    refused(
        json_hit({"event_name": "x", "params": {"p": "é" * (MAX_VALUE_BYTES // 2 + 1)}}),
        "value_too_large",
        413,
    )
    refused(
        json_hit({"event_name": "x", "items": [{"item_id": str(i)} for i in range(201)]}),
        "too_many_items",
        413,
    )


def test_full_event_mapping() -> None:
    ev = one(
        json_hit(
            {
                "event_name": " purchase ",
                "client_id": "c1",
                "user_id": 7,
                "session_id": "s1",
                "page_location": "https://a.example/x?ttclid=T1",
                "page_referrer": "https://r.example/",
                "page_title": "X",
                "action_source": "phone_call",
                "test_event_code": "TEST1",
                "user_data": {
                    "email": "A@B.example",
                    "first_name": "Ann",
                    "postal_code": 75001,
                    "external_id": 12,
                },
                "consent": {"ad_storage": "GRANTED", "analytics_storage": False, "limited_data_use": True},
                "click_ids": {"fbp": "fb.1.2.3", "ttp": "tp"},
                "value": "10",
                "currency": "usd",
                "tax": 1,
                "items": [{"item_id": "a", "quantity": "2", "shade": "blue"}],
                "params": {"k": "v", "n": 1.5, "b": False, "z": None},
                "user_properties": {"tier": "gold"},
                "experiments": {"e1": "A", "e2": 3},
            }
        )
    )
    assert ev.name == "purchase" and ev.action_source == "phone_call" and ev.test_event_code == "TEST1"
    assert (ev.client.client_id, ev.client.user_id, ev.client.session_id) == ("c1", "7", "s1")
    assert (ev.page.url, ev.page.referrer, ev.page.title) == (
        "https://a.example/x?ttclid=T1",
        "https://r.example/",
        "X",
    )
    assert (
        ev.user_data.email,
        ev.user_data.address.first_name,
        ev.user_data.address.postal_code,
        ev.user_data.external_id,
    ) == ("A@B.example", "Ann", "75001", "12")
    c = ev.consent
    assert (c.ad_storage, c.analytics_storage, c.limited_data_use, c.raw) == (
        True,
        False,
        True,
        {"ad_storage": "granted", "analytics_storage": "denied"},
    )
    assert (ev.click_ids.fbp, ev.click_ids.ttp, ev.click_ids.ttclid) == ("fb.1.2.3", "tp", "T1")
    assert (ev.ecommerce.value, ev.ecommerce.currency, ev.ecommerce.tax) == (10.0, "USD", 1.0)
    assert ev.ecommerce.items[0].model_dump(exclude_none=True) == {
        "item_id": "a",
        "quantity": 2.0,
        "custom": {"shade": "blue"},
    }
    assert ev.params == {"k": "v", "n": 1.5, "b": False, "z": None}
    assert ev.user_properties == {"tier": "gold"}
    assert ev.experiments == {"e1": "A", "e2": "3"}


def test_client_id_falls_back_to_ga_cookie() -> None:
    assert one(json_hit({"event_name": "x"}, cookies={"_ga": "GA1.1.5.6"})).client.client_id == "5.6"


def test_error_messages_never_echo_values() -> None:
    secret = "jane.doe@example.com"
    for event in (
        {"event_name": "x", "user_data": {"email": [secret]}},
        {"event_name": "x", "value": secret},
        {"event_name": "x", "timestamp": secret},
        {"event_name": "x", "currency": secret},
        {"event_name": "x", "params": {"a": {"b": secret}}},
        {"event_name": "x", "consent": {"ad_storage": secret}},
        {"event_name": "x", "action_source": secret},
    ):
        with pytest.raises(Exception) as info:
            parse_hit(json_hit(event))
        assert secret not in str(info.value)


def test_several_emails_phones_and_the_meta_only_user_fields() -> None:
    ev = one(json_hit({
        "event_name": "lead",
        "user_data": {
            "email": "a@example.com", "emails": ["b@example.com"], "phones": ["+1 650 555 1234"],
            "first_name_prefix": "Jonat", "first_initial": "J", "birth_day": 5, "birth_month": "11", "birth_year": 1990,
            "lead_id": 1234567890123456, "subscription_id": "sub-9", "fb_login_id": "10987", "page_id": "555",
        },
        "click_ids": {"ctwa_clid": "ARAkLkA8rmlFeiCktEJQ"},
    }))  # fmt: skip
    u = ev.user_data
    assert (u.email, u.other_emails, u.phone, u.other_phones) == ("a@example.com", ["b@example.com"], None, ["+1 650 555 1234"])
    assert (u.first_name_prefix, u.first_initial, u.birth_day, u.birth_month, u.birth_year) == ("Jonat", "J", "5", "11", "1990")
    assert (u.lead_id, u.subscription_id, u.fb_login_id, u.page_id) == ("1234567890123456", "sub-9", "10987", "555")
    assert ev.click_ids.ctwa_clid == "ARAkLkA8rmlFeiCktEJQ"
    err = refused(json_hit({"event_name": "x", "user_data": {"emails": [f"{i}@x.io" for i in range(11)]}}), "invalid_field")
    assert "user_data.emails" in err.message and "x.io" not in err.message
