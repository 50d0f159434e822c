"""GA4 Measurement Protocol: canonical events -> /mp/collect (one request = one user).

    POST {endpoint}/mp/collect?measurement_id=G-..&api_secret=..          (validate mode: /debug/mp/collect)
    {"client_id", "user_id"?, "user_properties"?, "consent"?, "user_data"?, "ip_override"?, "user_location"?, "device"?,
     "events": [{"name", "params", "timestamp_micros"}, ...]}

Vendor facts (VENDORS.md §2, [doc] developers.google.com/analytics/devguides/collection/protocol/ga4/
sending-events, …/reference, …/validating-events, …/ga4/uid-data; support.google.com/analytics/answer/9267744):
- /mp/collect ALWAYS answers 2xx and never reports payload errors: a bad event is silently dropped by GA4.
  So every documented limit is enforced here, before sending, each with a recorded reason; the validation
  server (/debug/mp/collect, `validate = true`) returns validationMessages which classify turns into
  per-event PERMANENT verdicts (reason ga4:<validationCode>).
- A request describes ONE user: client_id / user_id / user_properties / consent / user_data are request
  level. prepare puts them under payload["_request"]; build_requests groups tasks by them, then packs at
  most 25 events and at most 130 kB per request. Each event carries its own timestamp_micros (events may
  be timestamped individually, [doc] "timestamping ... follows a hierarchy"), backdated at most 72 h.
- Limits: event name <= 40, param name <= 40, param value <= 100 chars (page_location 1000, page_referrer
  420, page_title 300), <= 25 params per event, user property name <= 24 / value <= 36, <= 25 user properties,
  user_id <= 256. Names: a letter first, then letters, digits, underscores; reserved names and prefixes.

Policy for limits (what GA4 experts expect, documented in docs/destinations.md):
- the event itself is wrong (bad or reserved name, no client_id, older than 72 h) -> reject with a reason;
- a value too long -> truncate to the limit (GA4's own collection truncates too) and note it;
- a param / user property whose name is invalid, reserved or too long -> drop that param and note it;
- more than 25 params -> keep the first 25 in a fixed priority order (session / page / ecommerce / custom
  params by name) and note how many were dropped.
Notes land in Prepared.notes, so transform records them with the outcome.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import Field

from tagpipe.consent import geo_region
from tagpipe.destinations.base import (
    REQUEST_KEY,
    Batch,
    Destination,
    HttpDestinationSettings,
    Prepared,
    Rejection,
    Result,
    VendorRequest,
    Verdict,
    classify_http,
    group_by_request,
    mask_url,
    response_json,
    split_request,
)
from tagpipe.errors import InvalidInput
from tagpipe.hashing import google_hash, google_plain
from tagpipe.models import DeliveryTask, Event, Item

# --------------------------------------------------------------------------- geo and device (data)
# Request-level fields of the MP reference ([doc] developers.google.com/analytics/devguides/collection/
# protocol/ga4/reference, "user_location", "ip_override", "device"): without them GA4 geolocates a
# server-sent event by the server's address and reports no device.
#   ip_override   the client's IP ("used to derive geographic information")
#   user_location city, region_id (ISO 3166-2, "US-CA"), country_id (ISO 3166-1 alpha-2)
#   device        category, language, screen_resolution ("1280x2048"), operating_system,
#                 operating_system_version, model, browser, browser_version
# From the hit's user-agent client hints (gtag uamb/uap/uapv/uam/uafvl, MP device.*): category "mobile" /
# "desktop" from the mobile hint ([unverified] that GA4 wants exactly these words; "tablet" is never sent,
# the hints cannot tell it).
DEVICE_FROM_HINTS = (("operating_system", "platform"), ("operating_system_version", "platform_version"),
                     ("model", "model"))  # fmt: skip
_MOBILE_HINT = {"1": "mobile", "?1": "mobile", "true": "mobile", "0": "desktop", "?0": "desktop", "false": "desktop"}
_GREASE_BRANDS = ("not", "chromium")  # "Not-A.Brand" GREASE entries; Chromium when a real brand is listed


_HEADER_BRAND = re.compile(r'"([^"]+)";\s*v="([^"]+)"')


def browser_from_hints(full_version_list: str | None) -> tuple[str, str] | None:
    """(browser, version) from the full version list, in Sec-CH-UA-Full-Version-List form ('"Google
    Chrome";v="140.0.7339.128", "Chromium";v="140...", "Not_A Brand";v="8.0.0.0"', what the parsers keep)
    or gtag's raw uafvl ('Google%20Chrome;140.0.7339.128|...'): the first brand that is neither GREASE
    nor Chromium, else Chromium."""
    if not full_version_list:
        return None
    brands = _HEADER_BRAND.findall(full_version_list)
    if not brands:
        for entry in full_version_list.split("|"):
            brand, _, version = entry.partition(";")
            if brand.strip() and version.strip():
                brands.append((brand.strip().replace("%20", " "), version.strip()))
    for brand, version in brands:
        if not brand.lower().startswith(_GREASE_BRANDS):
            return brand, version
    return next(((b, v) for b, v in brands if b.lower() == "chromium"), None)


def client_context(event: Event) -> dict[str, Any]:
    """ip_override, user_location and device of one event, as far as the hit knew them."""
    client = event.client
    out: dict[str, Any] = {}
    if client.ip:
        out["ip_override"] = client.ip
    country, region = geo_region(client.geo)
    location = {}
    if client.geo.get("city"):
        location["city"] = client.geo["city"]
    if country:
        location["country_id"] = country
        if region:
            location["region_id"] = f"{country}-{region}"
    if location:
        out["user_location"] = location
    hints = client.client_hints
    device: dict[str, Any] = {}
    if category := _MOBILE_HINT.get(str(hints.get("mobile", "")).lower()):
        device["category"] = category
    if client.language:
        device["language"] = client.language
    if client.screen_resolution:
        device["screen_resolution"] = client.screen_resolution
    device.update({key: hints[hint] for key, hint in DEVICE_FROM_HINTS if hints.get(hint)})
    if browser := browser_from_hints(hints.get("full_version_list")):
        device["browser"], device["browser_version"] = browser
    if device:
        out["device"] = device
    return out


# --------------------------------------------------------------------------- limits (data, [doc] above)
MAX_EVENTS_PER_REQUEST = 25
MAX_BODY_BYTES = 130_000
MAX_AGE_SECONDS = 72 * 3600
SEND_MARGIN_SECONDS = 120
MAX_PARAMS = 25
MAX_USER_PROPERTIES = 25
MAX_ITEMS = 200  # [unverified] items per event, GA4 ecommerce docs
EVENT_NAME_MAX = 40
PARAM_NAME_MAX = 40
PARAM_VALUE_MAX = 100
PARAM_VALUE_MAX_BY_NAME = {"page_location": 1000, "page_referrer": 420, "page_title": 300}
USER_PROPERTY_NAME_MAX = 24
USER_PROPERTY_VALUE_MAX = 36
USER_ID_MAX = 256
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")  # [doc/code] confirmed
# [unverified] full lists (VENDORS §2), from GA4's reserved-names page
RESERVED_EVENT_NAMES = frozenset(
    {
        "ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward", "adunit_exposure",
        "app_background", "app_clear_data", "app_exception", "app_remove", "app_store_refund",
        "app_store_subscription_cancel", "app_store_subscription_convert", "app_store_subscription_renew",
        "app_update", "app_upgrade", "error", "firebase_campaign", "first_open", "first_visit",
        "in_app_purchase", "os_update", "session_start", "session_start_with_rollout", "user_engagement",
    }
)  # fmt: skip
RESERVED_EVENT_NAME_PREFIXES = ("dynamic_link_", "firebase_in_app_message_", "notification_")
RESERVED_PARAM_NAMES = frozenset({"firebase_conversion"})
RESERVED_USER_PROPERTIES = frozenset(
    {"first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id", "first_open_after_install"}
)

ITEM_FIELDS = (
    "item_id", "item_name", "affiliation", "coupon", "discount", "index", "item_brand", "item_category",
    "item_category2", "item_category3", "item_category4", "item_category5", "item_list_id", "item_list_name",
    "item_variant", "location_id", "price", "quantity", "promotion_id", "promotion_name", "creative_name",
    "creative_slot",
)  # fmt: skip


def name_problem(name: str, max_len: int, reserved_names: frozenset[str] = frozenset()) -> str | None:
    """None when `name` is a valid GA4 name, else the validationCode GA4 would give it."""
    if any(name.startswith(p) for p in RESERVED_PREFIXES) or name in reserved_names:
        return "NAME_RESERVED"
    if len(name) > max_len or not NAME_RE.match(name):
        return "NAME_INVALID"
    return None


def event_name_problem(name: str) -> str | None:
    problem = name_problem(name, EVENT_NAME_MAX, RESERVED_EVENT_NAMES)
    if problem is None and name.startswith(RESERVED_EVENT_NAME_PREFIXES):
        return "NAME_RESERVED"
    return problem


def _fit(value: Any, limit: int, label: str, notes: list[str]) -> Any:
    if isinstance(value, str) and len(value) > limit:
        notes.append(f"ga4:value_truncated:{label}")
        return value[:limit]
    return value


class Ga4Settings(HttpDestinationSettings):
    measurement_id: str = Field(pattern=r"^G-[A-Z0-9]+$")
    api_secret_env: str = "GA4_API_SECRET"
    endpoint: str = "https://www.google-analytics.com"  # EU: https://region1.google-analytics.com ([unverified])
    timeout: float = 5.0
    validate_only: bool = False  # send to /debug/mp/collect: nothing is recorded, violations come back
    event_map: dict[str, str] = Field(default_factory=dict)  # rename events (GA4 names pass through)
    send_user_data: bool = True  # user-provided data (hashed), only when ad_user_data is not denied
    send_client_context: bool = Field(
        True, description="ip_override, user_location and device, so server-sent events keep geo and device"
    )


class Ga4MeasurementProtocol(Destination):
    type = "ga4"
    test_mode = "validate_only"
    max_batch = 1000  # tasks per build_requests call; requests themselves hold <= 25 events (see above)
    Settings = Ga4Settings
    settings: Ga4Settings

    # ------------------------------------------------------------------ transform side
    def prepare(self, event: Event) -> Prepared | None:
        # a tag's event_name (Event.vendor_event_name, tagpipe.tagging) is sent verbatim, not mapped; GA4's
        # name rules still apply to it
        name = event.vendor_event_name or self.settings.event_map.get(event.name, event.name)
        problem = event_name_problem(name)
        if problem:
            raise InvalidInput(f"ga4:{problem}", f"GA4 refuses the event name {name[:60]!r}")
        client_id = event.client.client_id
        if not client_id:
            raise InvalidInput("ga4:client_id_missing", "GA4 web streams require client_id (the _ga cookie id)")
        if event.timestamp < self.now() - MAX_AGE_SECONDS:
            raise InvalidInput("ga4:event_too_old", "GA4 accepts events backdated up to 72 hours")

        notes: list[str] = []
        identifiers = ["client_id"]
        request: dict[str, Any] = {"client_id": client_id}
        if event.client.user_id:
            if len(event.client.user_id) > USER_ID_MAX:
                notes.append("ga4:user_id_dropped_too_long")
            else:
                request["user_id"] = event.client.user_id
                identifiers.append("user_id")
        user_properties = self._user_properties(event, notes)
        if user_properties:
            request["user_properties"] = user_properties
        consent = {}
        for purpose in ("ad_user_data", "ad_personalization"):
            value = getattr(event.consent, purpose)
            if value is not None:
                consent[purpose] = "GRANTED" if value else "DENIED"
        if consent:
            request["consent"] = consent
        if self.settings.send_user_data:
            if event.consent.ad_user_data is False:
                if _has_user_data(event):
                    notes.append("ga4:user_data_withheld_no_consent")
            else:
                user_data, keys = self._user_data(event)
                if user_data:
                    request["user_data"] = user_data
                    identifiers += keys

        if self.settings.send_client_context:
            request.update(client_context(event))

        payload = {
            "name": name,
            "params": self._params(event, notes),
            "timestamp_micros": int(round(event.timestamp * 1_000_000)),
            REQUEST_KEY: request,
        }
        return Prepared(name, payload, identifiers, notes)

    def _params(self, event: Event, notes: list[str]) -> dict[str, Any]:
        # priority order: what Realtime and sessions need, the page, ecommerce, then custom params by name
        ordered: list[tuple[str, Any]] = []
        if event.client.session_id:
            ordered.append(("session_id", event.client.session_id))
        if event.client.engagement_time_msec is not None:
            ordered.append(("engagement_time_msec", event.client.engagement_time_msec))
        if event.debug:
            ordered.append(("debug_mode", True))  # shows the event in DebugView
        page = event.page
        ordered += [(k, v) for k, v in (("page_location", page.url), ("page_referrer", page.referrer), ("page_title", page.title)) if v]
        ecommerce = event.ecommerce
        for key in ("currency", "value", "transaction_id", "tax", "shipping", "coupon"):
            value = getattr(ecommerce, key)
            if value is not None:
                ordered.append((key, value))
        if ecommerce.items:
            ordered.append(("items", self._items(ecommerce.items, notes)))
        for key in sorted(event.params):
            if event.params[key] is not None:
                ordered.append((key, event.params[key]))

        params: dict[str, Any] = {}
        dropped = 0
        for key, value in ordered:
            if key in params:
                continue  # a canonical field already set it
            problem = name_problem(key, PARAM_NAME_MAX, RESERVED_PARAM_NAMES)
            if problem:
                notes.append(f"ga4:param_dropped:{problem}:{key[:60]}")
                continue
            if len(params) >= MAX_PARAMS:
                dropped += 1
                continue
            if key != "items":
                value = _fit(value, PARAM_VALUE_MAX_BY_NAME.get(key, PARAM_VALUE_MAX), key, notes)
            params[key] = value
        if dropped:
            notes.append(f"ga4:params_dropped_over_limit:{dropped}")
        return params

    def _items(self, items: list[Item], notes: list[str]) -> list[dict[str, Any]]:
        if len(items) > MAX_ITEMS:
            notes.append(f"ga4:items_dropped_over_limit:{len(items) - MAX_ITEMS}")
        out = []
        for item in items[:MAX_ITEMS]:
            row: dict[str, Any] = {}
            for key in ITEM_FIELDS:
                value = getattr(item, key)
                if key == "quantity" and isinstance(value, float) and value.is_integer():
                    value = int(value)
                if value is not None:
                    row[key] = _fit(value, PARAM_VALUE_MAX, f"items.{key}", notes)
            for key in sorted(item.custom):
                value = item.custom[key]
                if value is None or key in row:
                    continue
                if name_problem(key, PARAM_NAME_MAX, RESERVED_PARAM_NAMES):
                    notes.append(f"ga4:item_param_dropped:{key[:60]}")
                    continue
                row[key] = _fit(value, PARAM_VALUE_MAX, f"items.{key}", notes)
            out.append(row)
        return out

    def _user_properties(self, event: Event, notes: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in sorted(event.user_properties):
            value = event.user_properties[key]
            if value is None:
                continue
            problem = name_problem(key, USER_PROPERTY_NAME_MAX, RESERVED_USER_PROPERTIES)
            if problem:
                notes.append(f"ga4:user_property_dropped:{problem}:{key[:60]}")
                continue
            if len(out) >= MAX_USER_PROPERTIES:
                notes.append(f"ga4:user_property_dropped:over_limit:{key[:60]}")
                continue
            out[key] = {"value": _fit(value, USER_PROPERTY_VALUE_MAX, f"user_property.{key}", notes)}
        return out

    def _user_data(self, event: Event) -> tuple[dict[str, Any], list[str]]:
        """user_data per [doc] ga4/uid-data, normalised + hashed like Google Ads enhanced conversions."""
        user, address, country = event.user_data, event.user_data.address, self.settings.default_phone_country
        out: dict[str, Any] = {}
        keys: list[str] = []
        email = google_hash("email", user.email) if user.email else None
        if email:
            out["sha256_email_address"] = [email]
            keys.append("em")
        phone = google_hash("phone", user.phone, default_country=country) if user.phone else None
        if phone:
            out["sha256_phone_number"] = [phone]
            keys.append("ph")
        entry: dict[str, Any] = {}
        for kind, key, tag in (("first_name", "sha256_first_name", "fn"), ("last_name", "sha256_last_name", "ln"), ("street", "sha256_street", None)):
            raw = getattr(address, "street" if kind == "street" else kind)
            hashed = google_hash(kind, raw) if raw else None
            if hashed:
                entry[key] = hashed
                if tag:
                    keys.append(tag)
        for kind in ("city", "region", "postal_code", "country"):
            raw = getattr(address, kind)
            plain = google_plain(kind, raw) if raw else None
            if plain:
                entry[kind] = plain
        if entry:
            out["address"] = [entry]
        return out, keys

    # ------------------------------------------------------------------ deliver side
    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        oldest = self.now() - MAX_AGE_SECONDS + SEND_MARGIN_SECONDS
        batch = Batch()
        fresh = []
        for task in tasks:
            micros = task.payload.get("timestamp_micros")
            if isinstance(micros, int) and micros / 1_000_000 < oldest:
                batch.rejected.append(
                    Rejection(task.event_uid, "ga4:event_too_old", "older than 72 hours at send time; GA4 would drop it")
                )
            else:
                fresh.append(task)
        if not fresh:
            return batch
        url = self._url()
        masked = mask_url(url, ("api_secret",))
        for fields, group in group_by_request(fresh):
            base_size = _size({**fields, "events": []})
            current: list[tuple[DeliveryTask, dict[str, Any]]] = []
            size = base_size
            for task in group:
                event = split_request(task.payload)[1]
                event_size = _size(event) + 1  # the comma
                if base_size + event_size > MAX_BODY_BYTES:
                    batch.rejected.append(
                        Rejection(task.event_uid, "ga4:body_too_large", "this event alone exceeds GA4's 130 kB body limit")
                    )
                    continue
                if current and (len(current) >= MAX_EVENTS_PER_REQUEST or size + event_size > MAX_BODY_BYTES):
                    batch.requests.append(self._request(url, masked, fields, current))
                    current, size = [], base_size
                current.append((task, event))
                size += event_size
            if current:
                batch.requests.append(self._request(url, masked, fields, current))
        return batch

    def _request(self, url: str, masked: str, fields: dict[str, Any], rows: list[tuple[DeliveryTask, dict[str, Any]]]) -> VendorRequest:
        body = {**fields, "events": [event for _, event in rows]}
        return VendorRequest("POST", url, [task.event_uid for task, _ in rows], json=body, masked_url=masked)

    def _url(self) -> str:
        secret = self.required_secret("api_secret", "create a Measurement Protocol API secret under Admin > Data streams > your stream")
        path = "/debug/mp/collect" if self.settings.validate_only else "/mp/collect"
        query = urlencode({"measurement_id": self.settings.measurement_id, "api_secret": secret})
        return f"{self.settings.endpoint.rstrip('/')}{path}?{query}"

    def classify(self, request: VendorRequest, response: httpx.Response | None, error: Exception | None) -> Result:
        result = classify_http(response, error)
        if result.verdict is not Verdict.OK or response is None:
            return result
        if not urlsplit(request.url).path.endswith("/debug/mp/collect"):
            # /mp/collect answers 2xx whatever the payload: OK means "sent", not "valid" (limits are
            # enforced in prepare/build_requests; run validate_only in CI to catch the rest)
            return Result(Verdict.OK, "ok")
        body = response_json(response)
        messages = body.get("validationMessages") if isinstance(body, dict) else None
        if not messages:
            return Result(Verdict.OK, "ok", "validated: no validation messages")
        per_event: dict[str, tuple[Verdict, str, str]] = {}
        unplaced: list[tuple[str, str]] = []
        for message in messages:
            if not isinstance(message, dict):
                continue
            code = str(message.get("validationCode") or "VALUE_INVALID")
            field_path = str(message.get("fieldPath") or "")
            index = _event_index(field_path, str(message.get("description") or ""))
            # detail: the field path and code only; GA4's description can echo values
            detail = f"{field_path or 'request'}: {code}"
            if index is not None and 0 <= index < len(request.event_uids):
                per_event.setdefault(request.event_uids[index], (Verdict.PERMANENT, f"ga4:{code}", detail))
            else:
                unplaced.append((code, detail))
        if unplaced:  # a request-level problem (client_id, too many events, ...): every event shares it
            code, detail = unplaced[0]
            return Result(Verdict.PERMANENT, f"ga4:{code}", detail, per_event=per_event)
        return Result(Verdict.OK, "ok", f"{len(per_event)} event(s) failed validation", per_event=per_event)


_INDEX_IN_PATH = re.compile(r"events\[(\d+)\]")
_INDEX_IN_TEXT = re.compile(r"index:?\s*\[(\d+)\]", re.IGNORECASE)


def _event_index(field_path: str, description: str) -> int | None:
    match = _INDEX_IN_PATH.search(field_path) or _INDEX_IN_TEXT.search(description)
    return int(match.group(1)) if match else None


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _has_user_data(event: Event) -> bool:
    user, address = event.user_data, event.user_data.address
    return any((user.email, user.phone, address.first_name, address.last_name, address.street))
