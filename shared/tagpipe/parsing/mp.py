"""GA4 Measurement Protocol (`/mp/collect`): a JSON body, measurement_id and api_secret in the query.

https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference (VENDORS.md §2).
GA4 itself answers 2xx to anything; we answer 4xx with the field path instead, so senders learn.
Unknown top-level keys are ignored (Google adds fields over time); the fields we read are type-checked.
api_secret is never copied into an Event.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from tagpipe.models import Consent, Event, RawHit

from ._common import (
    ECOMMERCE_NUMBERS,
    MAX_BATCH_EVENTS,
    MAX_ITEMS_PER_EVENT,
    MAX_PARAMS_PER_EVENT,
    STATUS_TOO_LARGE,
    EventSketch,
    HitContext,
    check_ip,
    check_size,
    check_timestamp,
    click_ids,
    ensure_text,
    event_base,
    fail,
    finite_float,
    parse_currency,
    parse_number,
    short,
    take_experiments,
    truthy,
)

ITEM_FIELDS = frozenset(
    {
        "item_id", "item_name", "affiliation", "coupon", "discount", "index", "item_brand", "item_category",
        "item_category2", "item_category3", "item_category4", "item_category5", "item_list_id",
        "item_list_name", "item_variant", "location_id", "price", "quantity", "promotion_id",
        "promotion_name", "creative_name", "creative_slot",
    }
)  # fmt: skip
ITEM_FLOATS = frozenset({"discount", "price", "quantity"})
_SCALARS = (str, int, float, bool, type(None))

# event params consumed into Event fields (not copied into params)
_CONSUMED = frozenset(
    {
        "session_id", "engagement_time_msec", "page_location", "page_referrer", "page_title",
        "event_id", "debug_mode", "test_event_code", "items", "currency", "transaction_id", "coupon",
        "experiments", *ECOMMERCE_NUMBERS,
    }
)  # fmt: skip
# MP user_data.address[] keys -> Address fields
ADDRESS_KEYS = {
    "sha256_first_name": "first_name",
    "sha256_last_name": "last_name",
    "sha256_street": "street",
    "city": "city",
    "region": "region",
    "postal_code": "postal_code",
    "country": "country",
}


def _query_param(query: str, name: str) -> str | None:
    for part in query.lstrip("?").split("&"):
        k, _, v = part.partition("=")
        if k == name:
            return unquote_plus(v) or None
    return None


def _str(path: str, value: Any, *, allow_int: bool = False) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return check_size(path, value)
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise fail("invalid_field", f"{path} must be a string{' or an integer' if allow_int else ''}")


def _obj(path: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail("invalid_field", f"{path} must be a JSON object")
    return value


def _number(path: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise fail("invalid_field", f"{path} must be a number, not a boolean")
    if isinstance(value, (int, float)):
        num = finite_float(value)
    elif isinstance(value, str):
        num = parse_number(value.strip())
        num = None if num is None else finite_float(num)
    else:
        num = None
    if num is None:
        raise fail("invalid_field", f"{path} must be a finite number")
    return num


def _micros(path: str, value: Any, now: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise fail("invalid_timestamp", f"{path} must be an integer number of microseconds since 1970")
    num = parse_number(value.strip()) if isinstance(value, str) else value
    seconds = None if num is None else finite_float(num)
    if seconds is None:
        raise fail("invalid_timestamp", f"{path} must be an integer number of microseconds since 1970")
    return check_timestamp(path, seconds / 1e6, now)


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _user_data(ud: dict[str, Any]) -> dict[str, Any]:
    """MP user_data ([doc] GA4 MP user-provided data: sha256_email_address[] and sha256_phone_number[] may
    hold several values): the first is the email / phone, the others other_emails / other_phones."""
    user: dict[str, Any] = {}
    for key, field in (("sha256_email_address", "email"), ("sha256_phone_number", "phone")):
        given = ud.get(key)
        values = given if isinstance(given, list) else [] if given is None else [given]
        texts = [t for i, v in enumerate(values) if (t := _str(f"user_data.{key}[{i}]", v)) is not None]
        if texts:
            user[field] = texts[0]
        if texts[1:]:
            user[f"other_{field}s"] = texts[1:]
    addr = _first(ud.get("address"))
    if addr is not None:
        addr = _obj("user_data.address[0]", addr)
        user["address"] = {
            field: _str(f"user_data.address[0].{key}", addr[key])
            for key, field in ADDRESS_KEYS.items()
            if addr.get(key) is not None
        }
    return user


def _consent_value(path: str, value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str) and value.upper() in ("GRANTED", "DENIED"):
        return value.upper() == "GRANTED"
    raise fail("invalid_field", f'{path} must be "GRANTED" or "DENIED"')


def _items(path: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise fail("invalid_field", f"{path} must be a JSON array of item objects")
    if len(value) > MAX_ITEMS_PER_EVENT:
        raise fail(
            "too_many_items",
            f"{path} has {len(value)} items; at most {MAX_ITEMS_PER_EVENT}",
            STATUS_TOO_LARGE,
        )
    items = []
    for i, it in enumerate(value):
        ip = f"{path}[{i}]"
        if not isinstance(it, dict):
            raise fail("invalid_field", f"{ip} must be a JSON object")
        if len(it) > MAX_PARAMS_PER_EVENT:
            raise fail("too_many_params", f"{ip} has more than {MAX_PARAMS_PER_EVENT} keys", STATUS_TOO_LARGE)
        item: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for k, v in it.items():
            fp = f"{ip}.{k}"
            if k in ITEM_FLOATS:
                item[k] = _number(fp, v)
            elif k == "index":
                num = _number(fp, v)
                if num is not None and not num.is_integer():
                    raise fail("invalid_field", f"{fp} must be an integer")
                item[k] = None if num is None else int(num)
            elif k in ITEM_FIELDS:
                item[k] = _str(fp, v, allow_int=True)
            else:
                custom[k] = _scalar(fp, v)
        if custom:
            item["custom"] = custom
        items.append(item)
    return items


def _scalar(path: str, v: Any) -> Any:
    if isinstance(v, str):
        return check_size(path, v)
    if isinstance(v, _SCALARS):
        return v
    raise fail(
        "invalid_field",
        f"{path} must be a string, number, boolean or null (objects and arrays are not accepted)",
    )


def parse(raw: RawHit, ctx: HitContext, now: float) -> list[Event]:
    return [Event.model_validate(event) for event in _events(raw, ctx, now)]


def validate(raw: RawHit, now: float) -> list[EventSketch]:
    """parse's verdict and, per event, what collect reads, without validating Event models: all
    of parse's refusals are made while building the events' fields (Event.model_validate of what
    _events builds accepts it). tests/unit/test_json_mp_validate_equivalence.py holds it to parse."""
    events = _events(raw, HitContext(raw), now)
    consent = Consent.model_validate(events[0]["consent"])  # one consent per MP request
    return [
        EventSketch(e["page"]["url"], consent, e["client"]["client_id"], e["event_id"]) for e in events
    ]


def _events(raw: RawHit, ctx: HitContext, now: float) -> list[dict[str, Any]]:
    """The fields of each event of the hit (Event.model_validate's input); raises InvalidInput."""
    ensure_text("body", raw.body)
    try:
        body = json.loads(raw.body, parse_constant=_no_constant) if raw.body.strip() else None
    except json.JSONDecodeError as e:
        raise fail(
            "invalid_json", f"the body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except (ValueError, RecursionError):
        raise fail(
            "invalid_json",
            "the body is not valid JSON (NaN/Infinity, a number too long, or nesting too deep)",
        ) from None
    if not isinstance(body, dict):
        raise fail(
            "invalid_json", 'the body must be a JSON object like {"client_id": "...", "events": [...]}'
        )

    client_id = _str("client_id", body.get("client_id"), allow_int=True)
    app_instance_id = _str("app_instance_id", body.get("app_instance_id"))
    if not client_id and not app_instance_id:
        raise fail("missing_client_id", "client_id (web) or app_instance_id (app) is required")
    user_id = _str("user_id", body.get("user_id"), allow_int=True)
    events_in = body.get("events")
    if not isinstance(events_in, list) or not events_in:
        raise fail("missing_events", "events must be a non-empty JSON array of {name, params} objects")
    if len(events_in) > MAX_BATCH_EVENTS:
        raise fail(
            "too_many_events",
            f"events has {len(events_in)} entries; at most {MAX_BATCH_EVENTS} are accepted per request",
            STATUS_TOO_LARGE,
        )
    request_ts = (
        _micros("timestamp_micros", body["timestamp_micros"], now)
        if body.get("timestamp_micros") is not None
        else None
    )

    user_props: dict[str, Any] = {}
    for name, prop in _obj("user_properties", body.get("user_properties")).items():
        path = f"user_properties.{short(name)[1:-1]}"
        check_size(f"the name of {path}", name)
        if isinstance(prop, dict):
            user_props[name] = _scalar(f"{path}.value", prop.get("value"))
        else:
            raise fail("invalid_field", f'{path} must be an object like {{"value": ...}}')

    consent_in = _obj("consent", body.get("consent"))
    consent: dict[str, Any] = {}
    for key in ("ad_user_data", "ad_personalization"):
        state = _consent_value(f"consent.{key}", consent_in.get(key))
        if state is not None:
            consent[key] = state
            consent.setdefault("raw", {})[key] = consent_in[key]
    if (npa := body.get("non_personalized_ads")) is not None:
        if not isinstance(npa, bool):
            raise fail("invalid_field", "non_personalized_ads must be true or false")
        consent["non_personalized_ads"] = npa
        consent.setdefault("raw", {})["non_personalized_ads"] = str(npa).lower()
        if npa:
            consent.setdefault("ad_personalization", False)

    user = _user_data(_obj("user_data", body.get("user_data")))

    ip = ctx.ip
    if body.get("ip_override") is not None:
        ip = check_ip("ip_override", _str("ip_override", body["ip_override"]) or "")
    geo = ctx.geo
    loc = _obj("user_location", body.get("user_location"))
    if loc:
        geo = dict(geo)
        for src, dst in (("country_id", "country"), ("region_id", "region"), ("city", "city")):
            if (v := _str(f"user_location.{src}", loc.get(src))) is not None:
                geo[dst] = v
    device = _obj("device", body.get("device"))
    language = _str("device.language", device.get("language"))
    screen = _str("device.screen_resolution", device.get("screen_resolution"))
    hints = {
        dst: v
        for src, dst in (
            ("model", "model"),
            ("operating_system", "platform"),
            ("operating_system_version", "platform_version"),
        )
        if (v := _str(f"device.{src}", device.get(src))) is not None
    }

    measurement_id = _query_param(raw.query, "measurement_id") or _query_param(raw.query, "firebase_app_id")
    action_source = "website" if client_id else "app"

    events: list[dict[str, Any]] = []
    for i, ev in enumerate(events_in):
        ep = f"events[{i}]"
        if not isinstance(ev, dict):
            raise fail("invalid_field", f"{ep} must be a JSON object with name and params")
        name = ev.get("name")
        if not isinstance(name, str) or not name.strip():
            raise fail("missing_event_name", f"{ep}.name is missing or empty")
        name = check_size(f"{ep}.name", name.strip())
        params_in = _obj(f"{ep}.params", ev.get("params"))
        if len(params_in) > MAX_PARAMS_PER_EVENT:
            raise fail(
                "too_many_params",
                f"{ep}.params has {len(params_in)} keys; at most {MAX_PARAMS_PER_EVENT} are accepted",
                STATUS_TOO_LARGE,
            )
        pp = f"{ep}.params"
        params: dict[str, Any] = {}
        for k, v in params_in.items():
            if k not in _CONSUMED:
                path = f"{pp}.{short(k)[1:-1]}"
                params[check_size(f"the name of {path}", k)] = _scalar(path, v)
        ts = (
            _micros(f"{ep}.timestamp_micros", ev["timestamp_micros"], now)
            if ev.get("timestamp_micros") is not None
            else request_ts
            if request_ts is not None
            else raw.received_at
        )

        ecommerce: dict[str, Any] = {}
        for k in ECOMMERCE_NUMBERS:
            if (num := _number(f"{pp}.{k}", params_in.get(k))) is not None:
                ecommerce[k] = num
        for k in ("transaction_id", "coupon"):
            if (s := _str(f"{pp}.{k}", params_in.get(k), allow_int=True)) is not None:
                ecommerce[k] = s
        if (cur := _str(f"{pp}.currency", params_in.get("currency"))) is not None:
            ecommerce["currency"] = parse_currency(f"{pp}.currency", cur)
        if params_in.get("items") is not None:
            ecommerce["items"] = _items(f"{pp}.items", params_in["items"])

        experiments: dict[str, str] = {}
        take_experiments(params, experiments)
        for exp, var in _obj(f"{pp}.experiments", params_in.get("experiments")).items():
            experiments[exp] = str(_scalar(f"{pp}.experiments.{exp}", var))

        url = _str(f"{pp}.page_location", params_in.get("page_location"))
        session_id = _str(f"{pp}.session_id", params_in.get("session_id"), allow_int=True)
        engagement = _number(f"{pp}.engagement_time_msec", params_in.get("engagement_time_msec"))
        event = event_base(
            raw, ctx, i, _str(f"{pp}.event_id", params_in.get("event_id"), allow_int=True), name, ts
        )
        event.update(
            measurement_id=measurement_id,
            action_source=action_source,
            page={
                "url": url,
                "referrer": _str(f"{pp}.page_referrer", params_in.get("page_referrer")),
                "title": _str(f"{pp}.page_title", params_in.get("page_title")),
            },
            client={
                "client_id": client_id or app_instance_id,
                "user_id": user_id,
                "session_id": session_id,
                "engagement_time_msec": None if engagement is None else int(engagement),
                "ip": ip,
                "user_agent": ctx.user_agent,
                "language": language,
                "screen_resolution": screen,
                "client_hints": hints,
                "geo": geo,
            },
            user_data=user,
            click_ids=click_ids(ctx, url),
            consent=consent,
            ecommerce=ecommerce,
            params=params,
            user_properties=user_props,
            experiments=experiments,
            debug=ctx.debug or truthy(params_in.get("debug_mode")),
            test_event_code=_str(f"{pp}.test_event_code", params_in.get("test_event_code")),
        )
        events.append(event)
    return events


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
