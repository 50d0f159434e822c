"""Our JSON API (`POST /events`): one event object, a list of them, or {"events": [...]}.

Strict input models (unknown keys are refused with the key's path) named like GA4 so marketers know
them. Documented in docs/json-api.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tagpipe.models import Consent, Event, RawHit

from ._common import (
    CURRENCY_RULE,
    MAX_BATCH_EVENTS,
    MAX_PARAMS_PER_EVENT,
    MAX_VALUE_BYTES,
    STATUS_TOO_LARGE,
    EventSketch,
    HitContext,
    check_ip,
    check_request_text,
    click_ids,
    currency_code,
    ensure_text,
    event_base,
    event_id_for,
    fail,
    finite_float,
    ga_cookie_client_id,
    given_event_id,
    hit_fingerprint,
    parse_json_timestamp,
    parse_number,
    take_experiments,
)

ACTION_SOURCES = (
    "website",
    "email",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
)  # Meta's ActionSource values (VENDORS.md §1.2)

# the oldest age_ms taken: Meta refuses events older than 7 days, GA4 MP 72 hours (VENDORS.md)
MAX_AGE_MS = 7 * 24 * 3600 * 1000

# params keys that have their own top-level field: refused in params so there is one way to say it
RESERVED_PARAMS = frozenset(
    {
        "value", "currency", "transaction_id", "tax", "shipping", "coupon", "items", "event_id",
        "page_location", "page_referrer", "page_title", "session_id", "client_id", "user_id",
        "user_data", "experiments", "experiment_id", "variant_id", "debug_mode", "test_event_code",
    }
)  # fmt: skip

# hints for unknown keys people often send
HINTS = {
    "name": "event_name",
    "en": "event_name",
    "event": "event_name",
    "email": "user_data.email",
    "phone": "user_data.phone",
    "email_address": "user_data.email",
    "phone_number": "user_data.phone",
    "timestamp_micros": "timestamp",
    "event_time": "timestamp",
    "ip": "ip_override",
    "client_ip_address": "ip_override",
    "client_user_agent": "user_agent",
    "url": "page_location",
    "event_source_url": "page_location",
    "order_id": "transaction_id",
    "fbp": "click_ids.fbp",
    "fbc": "click_ids.fbc",
    "gclid": "click_ids.gclid",
    "ttclid": "click_ids.ttclid",
    "price": "items[].price",
}


# --------------------------------------------------------------------------- field types


def _size(value: str) -> str:
    if len(value) > MAX_VALUE_BYTES // 4 and len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        raise PydanticCustomError("value_too_large", f"longer than {MAX_VALUE_BYTES} bytes")
    return value


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise PydanticCustomError("string_type", "must be a string")
    return _size(v)


def _id(v: Any) -> str:
    """An identifier: a string, or an integer we turn into one."""
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if not isinstance(v, str):
        raise PydanticCustomError("id_type", "must be a string or an integer")
    return _size(v)


def _num(v: Any) -> float:
    if isinstance(v, bool):
        raise PydanticCustomError("number_type", "must be a number, not a boolean")
    if isinstance(v, str):
        n = parse_number(v.strip())
        v = 0.0 if n is None else n
        if n is None:
            raise PydanticCustomError("number_type", "must be a number")
    f = finite_float(v) if isinstance(v, (int, float)) else None
    if f is None:
        raise PydanticCustomError("number_type", "must be a finite number")
    return f


def _int(v: Any) -> int:
    f = _num(v)
    if not f.is_integer():
        raise PydanticCustomError("int_type", "must be an integer")
    return int(f)


def _currency(v: Any) -> str:
    code = currency_code(_text(v))
    if code is None:
        raise PydanticCustomError("currency", CURRENCY_RULE)
    return code


def _consent(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("granted", "denied"):
        return v.strip().lower() == "granted"
    raise PydanticCustomError("consent", 'must be "granted", "denied" or a boolean')


def _scalar(v: Any) -> Any:
    if isinstance(v, str):
        return _size(v)
    if isinstance(v, float) and not math.isfinite(v):  # json.loads refuses NaN; 1e999 is inf
        raise PydanticCustomError("number_type", "must be a finite number")
    if v is None or isinstance(v, (bool, int, float)):
        return v
    raise PydanticCustomError("scalar", "must be a string, number, boolean or null (no objects or arrays)")


def _scalar_map(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise PydanticCustomError("dict_type", "must be a JSON object")
    if len(v) > MAX_PARAMS_PER_EVENT:
        raise PydanticCustomError("too_many_params", f"has {len(v)} keys; at most {MAX_PARAMS_PER_EVENT}")
    for k, item in v.items():
        _size(k)
        try:
            _scalar(item)
        except PydanticCustomError as e:
            raise PydanticCustomError(e.type, f"key {k[:60]!r} {e.message()}") from None
    return v


Text = Annotated[str, BeforeValidator(_text)]
Id = Annotated[str, BeforeValidator(_id)]
Num = Annotated[float, BeforeValidator(_num)]
Int = Annotated[int, BeforeValidator(_int)]
Currency = Annotated[str, BeforeValidator(_currency)]
ConsentState = Annotated[bool, BeforeValidator(_consent)]
ScalarMap = Annotated[dict[str, Any], BeforeValidator(_scalar_map)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


MAX_CONTACTS = 10  # further emails / phones of one person (Meta takes lists; a CRM rarely holds more)
PARTIAL_AND_ID_FIELDS = (
    "first_name_prefix", "last_name_prefix", "first_initial", "birth_day", "birth_month", "birth_year",
    "lead_id", "subscription_id", "fb_login_id", "page_id",
)  # fmt: skip


class JsonUserData(_In):
    email: Text | None = None
    phone: Text | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    street: Text | None = None
    city: Text | None = None
    region: Text | None = None
    postal_code: Id | None = None
    country: Text | None = None
    gender: Text | None = None
    date_of_birth: Text | None = None
    external_id: Id | None = None
    emails: list[Text] = Field(default_factory=list, max_length=MAX_CONTACTS)  # beside email: the person's others
    phones: list[Text] = Field(default_factory=list, max_length=MAX_CONTACTS)
    first_name_prefix: Text | None = None  # Meta f5first: what a site knows of a first name (5 letters)
    last_name_prefix: Text | None = None  # Meta f5last
    first_initial: Text | None = None  # Meta fi
    birth_day: Id | None = None  # Meta dobd
    birth_month: Id | None = None  # Meta dobm
    birth_year: Id | None = None  # Meta doby
    lead_id: Id | None = None  # Meta lead ads / CRM lead id
    subscription_id: Id | None = None
    fb_login_id: Id | None = None
    page_id: Id | None = None


class JsonConsent(_In):
    ad_storage: ConsentState | None = None
    analytics_storage: ConsentState | None = None
    ad_user_data: ConsentState | None = None
    ad_personalization: ConsentState | None = None
    limited_data_use: bool = False


class JsonClickIds(_In):
    fbp: Text | None = None
    fbc: Text | None = None
    fbclid: Text | None = None
    gclid: Text | None = None
    gbraid: Text | None = None
    wbraid: Text | None = None
    dclid: Text | None = None
    ttclid: Text | None = None
    ttp: Text | None = None
    ctwa_clid: Text | None = None
    epik: Text | None = None
    sc_click_id: Text | None = None
    sc_cookie1: Text | None = None
    rdt_cid: Text | None = None
    rdt_uuid: Text | None = None
    li_fat_id: Text | None = None
    msclkid: Text | None = None
    uet_vid: Text | None = None


class JsonItem(BaseModel):
    """GA4 item fields; any other key is an item-scoped custom parameter (scalars only)."""

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    item_id: Id | None = None
    item_name: Text | None = None
    affiliation: Text | None = None
    coupon: Text | None = None
    discount: Num | None = None
    index: Int | None = None
    item_brand: Text | None = None
    item_category: Text | None = None
    item_category2: Text | None = None
    item_category3: Text | None = None
    item_category4: Text | None = None
    item_category5: Text | None = None
    item_list_id: Id | None = None
    item_list_name: Text | None = None
    item_variant: Text | None = None
    location_id: Id | None = None
    price: Num | None = None
    quantity: Num | None = None
    promotion_id: Id | None = None
    promotion_name: Text | None = None
    creative_name: Text | None = None
    creative_slot: Text | None = None

    @model_validator(mode="after")
    def _custom_scalars(self) -> JsonItem:
        if self.__pydantic_extra__:
            _scalar_map(self.__pydantic_extra__)
        return self


class JsonEvent(_In):
    event_name: Text
    event_id: Id | None = None
    timestamp: Annotated[Any, Field(description="unix s, unix ms or ISO 8601")] = None
    # How long ago the event happened, on the sender's own clock: a tag that retries or resends from its
    # outbox says when the event was, without trusting the device's wall clock (often wrong).
    age_ms: Num | None = None
    action_source: Literal[ACTION_SOURCES] = "website"  # type: ignore[valid-type]
    client_id: Id | None = None
    user_id: Id | None = None
    session_id: Id | None = None
    page_location: Text | None = None
    page_referrer: Text | None = None
    page_title: Text | None = None
    ip_override: Text | None = None
    user_agent: Text | None = None
    test_event_code: Text | None = None
    debug_mode: bool = False
    user_data: JsonUserData | None = None
    consent: JsonConsent | None = None
    click_ids: JsonClickIds | None = None
    value: Num | None = None
    currency: Currency | None = None
    transaction_id: Id | None = None
    tax: Num | None = None
    shipping: Num | None = None
    coupon: Text | None = None
    items: Annotated[list[JsonItem], Field(max_length=200)] | None = None
    params: ScalarMap | None = None
    user_properties: ScalarMap | None = None
    experiments: dict[str, Id] | None = None


_EVENTS = TypeAdapter(list[JsonEvent])


# --------------------------------------------------------------------------- errors


def _path(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(body)"


def _from_validation_error(err: ValidationError, prefix: Any) -> Exception:
    errors = err.errors(include_url=False, include_input=False, include_context=False)
    e = errors[0]
    loc = tuple(e["loc"])
    # loc starts with the event's index in our list; the caller's shape decides how it prints
    head = prefix(loc[0]) if loc and isinstance(loc[0], int) else ""
    path = _path(head, loc[1:] if loc and isinstance(loc[0], int) else loc)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    kind = e["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        hint = f"; did you mean '{HINTS[key]}'?" if key in HINTS else ""
        return fail(
            "unknown_field", f"unknown field '{path}'{hint} See docs/json-api.md for the fields{more}"
        )
    if kind == "missing":
        if loc and loc[-1] == "event_name":
            return fail("missing_event_name", f"{path} is required{more}")
        return fail("missing_field", f"{path} is required{more}")
    if kind == "value_too_large":
        return fail("value_too_large", f"{path} is {e['msg']}{more}", STATUS_TOO_LARGE)
    if kind == "too_many_params":
        return fail("too_many_params", f"{path} {e['msg']}{more}", STATUS_TOO_LARGE)
    if kind == "too_long" and loc and loc[-1] == "items":
        return fail("too_many_items", f"{path} has more than 200 items{more}", STATUS_TOO_LARGE)
    msg = e["msg"]
    msg = msg[0].lower() + msg[1:] if msg else "is not valid"
    if msg.startswith("input should be "):
        msg = "must be " + msg[16:]
    if not msg.startswith(("must", "is", "has", "key")):
        msg = f"is not valid: {msg}"
    return fail("invalid_field", f"{path} {msg}{more}")


# --------------------------------------------------------------------------- parse


def _load(body: str) -> tuple[list[Any], Callable[[int], str]]:
    """The list of event objects and a function that prints an event index as a path prefix."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise fail(
            "invalid_json", f"the body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except (ValueError, RecursionError):
        raise fail(
            "invalid_json",
            "the body is not valid JSON (NaN/Infinity, a number too long, or nesting too deep)",
        ) from None
    if isinstance(data, list):
        return data, lambda i: f"[{i}]"
    if isinstance(data, dict):
        if "events" in data and "event_name" not in data:
            extra = [k for k in data if k != "events"]
            if extra:
                raise fail(
                    "unknown_field", f"unknown field '{extra[0][:60]}' next to 'events'; put it on each event"
                )
            events = data["events"]
            if not isinstance(events, list):
                raise fail("invalid_field", "events must be a JSON array of event objects")
            return events, lambda i: f"events[{i}]"
        return [data], lambda i: ""
    raise fail("invalid_json", 'the body must be an event object, a list of them, or {"events": [...]}')


def _inputs(raw: RawHit) -> tuple[list[JsonEvent], Callable[[int], str]]:
    """The body's events as input models, and how an event index prints as a path prefix."""
    ensure_text("body", raw.body)
    if not raw.body.strip():
        raise fail(
            "missing_events", 'the body is empty; send an event object, a list of them, or {"events": [...]}'
        )
    data, prefix = _load(raw.body)
    if not data:
        raise fail("missing_events", "the list of events is empty")
    if len(data) > MAX_BATCH_EVENTS:
        raise fail(
            "too_many_events",
            f"the request has {len(data)} events; at most {MAX_BATCH_EVENTS} are accepted",
            STATUS_TOO_LARGE,
        )
    for i, ev in enumerate(data):
        if not isinstance(ev, dict):
            raise fail("invalid_field", f"{prefix(i) or '(body)'} must be a JSON object")
    try:
        return _EVENTS.validate_python(data), prefix
    except ValidationError as e:
        raise _from_validation_error(e, prefix) from None


def parse(raw: RawHit, ctx: HitContext, now: float) -> list[Event]:
    inputs, prefix = _inputs(raw)
    return [_event(raw, ctx, i, ev, _checked(raw, ev, prefix(i), now)) for i, ev in enumerate(inputs)]


def validate(raw: RawHit, now: float) -> list[EventSketch]:
    """parse's refusals (same code, message and status, same order; HitContext's first), without
    building Events; per event what collect reads. tests/unit/test_json_mp_validate_equivalence.py
    holds it to parse."""
    check_request_text(raw)
    ga_client_id = ga_cookie_client_id(raw.cookies)
    inputs, prefix = _inputs(raw)
    out = []
    key: str | None = None  # hit_fingerprint, only if an event lacks an id
    for i, ev in enumerate(inputs):
        _checked(raw, ev, prefix(i), now)
        out.append(EventSketch(
            page_url=ev.page_location,
            consent=Consent.model_validate(_consent(ev)),
            client_id=ev.client_id or ga_client_id,
            event_id=given_event_id(ev.event_id) or event_id_for(key or (key := hit_fingerprint(raw)), i),
        ))  # fmt: skip
    return out


class _Checked(NamedTuple):
    """What the checks of one event made of it beyond its input model."""

    name: str
    timestamp: float
    params: dict[str, Any]
    ip: str | None  # ip_override, checked


def _checked(raw: RawHit, ev: JsonEvent, where: str, now: float) -> _Checked:
    """The refusals of one event that its input model does not make, in order."""

    def path(field: str) -> str:
        return f"{where}.{field}" if where else field

    name = ev.event_name.strip()
    if not name:
        raise fail("missing_event_name", f"{path('event_name')} is empty")
    if ev.age_ms is None:
        ts = raw.received_at if ev.timestamp is None else parse_json_timestamp(path("timestamp"), ev.timestamp, now)
    elif ev.timestamp is not None:
        raise fail("invalid_timestamp", f"{path('age_ms')}: give timestamp or age_ms, not both")
    elif not 0 <= ev.age_ms <= MAX_AGE_MS:
        raise fail("invalid_timestamp", f"{path('age_ms')} must be between 0 and {MAX_AGE_MS} (7 days in ms)")
    else:
        ts = raw.received_at - ev.age_ms / 1000.0
    params = dict(ev.params or {})
    for key in params:
        if key in RESERVED_PARAMS:
            raise fail("invalid_field", f"{path('params.' + key)}: use the top-level field '{key}' instead")
    ip = check_ip(path("ip_override"), ev.ip_override) if ev.ip_override else None
    return _Checked(name, ts, params, ip)


def _consent(ev: JsonEvent) -> dict[str, Any]:
    consent: dict[str, Any] = {}
    if c := ev.consent:
        consent = c.model_dump(exclude_none=True)
        consent["raw"] = {
            k: ("granted" if v else "denied") for k, v in consent.items() if k != "limited_data_use"
        }
    return consent


def _event(raw: RawHit, ctx: HitContext, i: int, ev: JsonEvent, checked: _Checked) -> Event:
    params = checked.params
    experiments: dict[str, str] = {}
    take_experiments(params, experiments)  # exp_<id> params
    experiments.update(ev.experiments or {})

    ecommerce: dict[str, Any] = {
        k: v
        for k, v in (
            ("value", ev.value),
            ("currency", ev.currency),
            ("transaction_id", ev.transaction_id),
            ("tax", ev.tax),
            ("shipping", ev.shipping),
            ("coupon", ev.coupon),
        )
        if v is not None
    }
    if ev.items:
        ecommerce["items"] = [_item(it) for it in ev.items]

    user: dict[str, Any] = {}
    if ud := ev.user_data:
        user = {
            "email": ud.email,
            "phone": ud.phone,
            "gender": ud.gender,
            "date_of_birth": ud.date_of_birth,
            "external_id": ud.external_id,
            "other_emails": ud.emails,
            "other_phones": ud.phones,
            **{key: getattr(ud, key) for key in PARTIAL_AND_ID_FIELDS},
            "address": {
                "first_name": ud.first_name,
                "last_name": ud.last_name,
                "street": ud.street,
                "city": ud.city,
                "region": ud.region,
                "postal_code": ud.postal_code,
                "country": ud.country,
            },
        }

    explicit = ev.click_ids.model_dump(exclude_none=True) if ev.click_ids else None

    event = event_base(raw, ctx, i, ev.event_id, checked.name, checked.timestamp)
    event.update(
        action_source=ev.action_source,
        page={"url": ev.page_location, "referrer": ev.page_referrer, "title": ev.page_title},
        client={
            "client_id": ev.client_id or ctx.ga_client_id,
            "user_id": ev.user_id,
            "session_id": ev.session_id,
            "ip": checked.ip or ctx.ip,
            "user_agent": ev.user_agent or ctx.user_agent,
            "geo": ctx.geo,
        },
        user_data=user,
        click_ids=click_ids(ctx, ev.page_location, explicit),
        consent=_consent(ev),
        ecommerce=ecommerce,
        params=params,
        user_properties=dict(ev.user_properties or {}),
        experiments=experiments,
        debug=ctx.debug or ev.debug_mode,
        test_event_code=ev.test_event_code,
    )
    return Event.model_validate(event)


def _item(it: JsonItem) -> dict[str, Any]:
    extra = it.__pydantic_extra__
    if not extra:
        return it.model_dump(exclude_none=True)
    item = it.model_dump(exclude_none=True, exclude=set(extra))
    item["custom"] = dict(extra)
    return item


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
