"""Google Data Manager API: Google Ads conversions and GA4 events through events:ingest.

    POST {endpoint}/v1/events:ingest            Authorization: Bearer <service-account access token>
    {"destinations": [<Destination>, ...], "events": [<Event>, ...], "encoding": "HEX",
     "consent"?: ..., "validateOnly"?: true}
    -> 200 {"requestId": "..."}; processing errors later, from GET /v1/requestStatus:retrieve?requestId=..

Google: "all future ingestion functionality" lands in the Data Manager API; the Google Ads API
destination (google_ads.py) stays for accounts already on it. Vendor facts, from the API's own protos
([proto] googleapis/googleapis google/ads/datamanager/v1/*.proto) and guides ([doc]
developers.google.com/data-manager/api/devguides/events/..., .../concepts/formatting):
- A request holds 1-10 destinations ([proto] error.proto TOO_MANY_DESTINATIONS) and at most 2,000 events
  ([proto] ingestion_service.proto IngestEventsRequest.events). A Destination is operating_account
  {account_id, account_type} + product_destination_id (the conversion action id) + an optional reference;
  an event names its destinations by destination_references ([proto] destination.proto, event.proto).
- Event: event_timestamp (RFC 3339, required), transaction_id, currency, conversion_value, event_source
  (WEB / APP / IN_STORE / PHONE / OTHER), user_data.user_identifiers (at most 10, each exactly one of
  email_address / phone_number / address {given_name, family_name, region_code, postal_code}), consent
  {ad_user_data, ad_personalization} as CONSENT_GRANTED / CONSENT_DENIED, ad_identifiers {gclid | gbraid |
  wbraid, session_attributes, landing_page_device_info}, event_device_info {user_agent, ip_address},
  cart_data.items {merchant_product_id, quantity, unit_price} ([proto] event.proto, user_data.proto,
  consent.proto, cart_data.proto, device_info.proto). REST JSON is lowerCamelCase.
- Hashes are SHA-256 of the Data Manager formatting guide's normal form, through tagpipe.hashing.google_hash
  (checked against google-ads-datamanager-util's Formatter in tests/hashing); encoding HEX is required
  when user data is sent ([proto] IngestEventsRequest.encoding).
- "Google Ads does not support IP address matching for end users in the EEA, UK or CH": ip_address is left
  out for visitors located there, and when the location is unknown ([proto] device_info.proto).
- Validation fails fast: one bad event fails the request with google.rpc.BadRequest fieldViolations. Their
  field paths name the event ("events[3]..."; [unverified] the exact path prefix, so any "events[<n>]" is
  read); those events are refused, the others sent again. Asynchronous processing errors (duplicate gclid,
  consent, too old) only show in requestStatus:retrieve: `tagpipe request-status` reads them.
- Auth: OAuth 2 scope https://www.googleapis.com/auth/datamanager ([proto] ingestion_service.proto),
  a service-account key from the environment (credentials_env) or, on GCP, the runtime's own service
  account (Application Default Credentials).

GA4 events (operating_account_type = "GOOGLE_ANALYTICS_PROPERTY"; [doc] .../events/analytics/online/send-events,
[lib] google-ads-datamanager 0.9.4, the API's Python client, whose protos carry the GA4 fields):
- The destination is the property (operating account GOOGLE_ANALYTICS_PROPERTY, its numeric id) and the web
  stream's measurement id (G-...) as product_destination_id; an event may name only one GA4 destination
  ([proto] error.proto MULTIPLE_DESTINATIONS_FOR_GOOGLE_ANALYTICS_EVENT). Google allowlists properties for
  this ([doc] "only available to allowlisted accounts"; NOT_ALLOWLISTED otherwise).
- Every event is sent, as to the Measurement Protocol, and is mapped by the same GA4 rules (ga4.py: names,
  parameters, items, user properties, user-provided data, geo and device), then moved field by field onto the
  Data Manager Event as Google's MP upgrade guide maps them ([doc] .../measurement-protocol/upgrade/
  field-mappings): client_id, user_id, timestamp_micros -> event_timestamp, user_properties ->
  user_properties.additional_user_properties (no per-property timestamps), consent, user_data,
  user_location -> event_location, ip_override -> event_device_info.ip_address, device ->
  event_device_info; name -> event_name; the params transaction_id, currency, value and items to
  transaction_id, currency, conversion_value and cart_data.items (item_id, price -> unit_price, quantity,
  the rest -> additional_item_parameters); every other param -> additional_event_parameters, values as
  strings ([proto] EventParameter.value "the string representation"). [unverified] that GA4 reads
  session_id / engagement_time_msec from additional_event_parameters as it does from MP params: the guide's
  event table was not available to us; they are sent there, as the proto's "any event parameters" says.
- The Google Ads rule on IP addresses (EEA, UK, CH) is a Google Ads matching rule: GA4 events carry the
  IP as the Measurement Protocol's ip_override does, for geo.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator, model_validator

from tagpipe.destinations.base import (
    REQUEST_KEY,
    Batch,
    Destination,
    HttpDestinationSettings,
    Prepared,
    Result,
    VendorRequest,
    Verdict,
    chunks,
    classify_http,
    response_json,
    retry_after_seconds,
)
from tagpipe.destinations.ga4 import Ga4MeasurementProtocol, Ga4Settings
from tagpipe.destinations.google_ads import TOKEN_REFRESH_MARGIN_SECONDS, google_rpc_verdict, rpc_error
from tagpipe.errors import ConfigError, InvalidInput, PermanentDelivery, RetryableDelivery
from tagpipe.hashing import google_hash, google_plain
from tagpipe.models import DeliveryTask, Event

SCOPE = "https://www.googleapis.com/auth/datamanager"
MAX_EVENTS_PER_REQUEST = 2000
MAX_DESTINATIONS_PER_REQUEST = 10
MAX_USER_IDENTIFIERS = 10
CLICK_ID_KEYS = ("gclid", "gbraid", "wbraid")
EVENT_SOURCES = {"website": "WEB", "app": "APP", "physical_store": "IN_STORE", "phone_call": "PHONE"}
# where Google Ads takes no IP address ([proto] device_info.proto): the EEA (EU 27, Iceland,
# Liechtenstein, Norway), the United Kingdom and Switzerland
NO_IP_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB CH".split()
)
_EVENT_INDEX = re.compile(r"events\[(\d+)\]")


# --------------------------------------------------------------------------- credentials
class ServiceAccountToken:
    """An access token for SCOPE from a service-account key (JSON, from the environment) or, without
    one, Application Default Credentials; refreshed by google-auth before it expires. Thread-safe."""

    def __init__(self, key_json: str | None) -> None:
        self._key_json = key_json
        self._credentials: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        import google.auth
        from google.oauth2 import service_account

        if self._key_json:
            try:
                info = json.loads(self._key_json)
            except ValueError:
                raise PermanentDelivery("data_manager:bad_credentials", "the service-account key is not JSON") from None
            return service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
        credentials, _ = google.auth.default(scopes=[SCOPE])
        return credentials

    @property
    def token(self) -> str | None:
        return getattr(self._credentials, "token", None)

    def valid(self) -> bool:
        c = self._credentials
        if c is None or not c.token:
            return False
        expiry = getattr(c, "expiry", None)  # naive UTC in google-auth
        return expiry is None or expiry.replace(tzinfo=UTC).timestamp() > time.time() + TOKEN_REFRESH_MARGIN_SECONDS

    def invalidate(self) -> None:
        with self._lock:
            if self._credentials is not None:
                self._credentials.token = None

    def ensure(self) -> str:
        import google.auth.exceptions
        from google.auth.transport.requests import Request

        with self._lock:
            if self.valid():
                return self.token  # type: ignore[return-value]
            try:
                if self._credentials is None:
                    self._credentials = self._load()
                self._credentials.refresh(Request())
            except google.auth.exceptions.DefaultCredentialsError:
                raise ConfigError("credentials_env", "no Google credentials found",
                                  "set the service-account key's variable, or run on GCP with a service account") from None  # fmt: skip
            except google.auth.exceptions.RefreshError as exc:
                retryable = getattr(exc, "retryable", False)
                cls = RetryableDelivery if retryable else PermanentDelivery
                raise cls("data_manager:oauth_refused", "Google refused the service-account token request") from None
            except google.auth.exceptions.TransportError:
                raise RetryableDelivery("data_manager:oauth_network", "Google's token endpoint was unreachable") from None
            return self._credentials.token


# --------------------------------------------------------------------------- settings
class DataManagerSettings(HttpDestinationSettings):
    operating_account_id: str = Field(
        description="the Google Ads account (10 digits) that owns the conversion actions, or the GA4 property id"
    )
    operating_account_type: Literal["GOOGLE_ADS", "GOOGLE_ANALYTICS_PROPERTY"] = "GOOGLE_ADS"
    login_account_id: str | None = Field(None, description="a manager account the credentials act through")
    login_account_type: Literal["GOOGLE_ADS", "DATA_PARTNER", "GOOGLE_ANALYTICS_PROPERTY"] = "GOOGLE_ADS"
    # Google Ads: canonical event name -> conversion action id (product_destination_id); unmapped events are not sent
    conversion_actions: dict[str, str] = Field(default_factory=dict)
    # GA4: the web stream that receives every event, and renames as the ga4 destination takes them
    measurement_id: str | None = Field(None, pattern=r"^G-[A-Z0-9]+$")
    event_map: dict[str, str] = Field(default_factory=dict)
    endpoint: str = "https://datamanager.googleapis.com"
    timeout: float = 10.0
    credentials_env: str = Field(
        "GOOGLE_DATAMANAGER_CREDENTIALS",
        description="variable holding a service-account key (JSON); unset: the runtime's own service account",
    )
    validate_only: bool = Field(False, description="Google validates each request and records nothing (set-up and tests)")
    send_user_identifiers: bool = True
    send_device_info: bool = Field(True, description="user agent and IP (never an IP from the EEA, UK or CH)")

    @field_validator("operating_account_id", "login_account_id")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace("-", "")
        if not digits.isdigit():
            raise ValueError("an account id is digits, e.g. 123-456-7890")
        return digits

    @field_validator("conversion_actions")
    @classmethod
    def _actions(cls, value: dict[str, str]) -> dict[str, str]:
        for name, action in value.items():
            if not action.isdigit():
                raise ValueError(f"{name}: a conversion action id is digits (Google Ads > Goals > Conversions), got {action!r}")
        return value

    @model_validator(mode="after")
    def _one_product(self) -> DataManagerSettings:
        if self.ga4:
            if not self.measurement_id:
                raise ValueError("a GA4 property needs measurement_id (the web stream's G-... id)")
            if self.conversion_actions:
                raise ValueError("conversion_actions are Google Ads conversion actions: a GA4 property takes every event")
        elif self.measurement_id or self.event_map:
            raise ValueError("measurement_id and event_map are for operating_account_type = \"GOOGLE_ANALYTICS_PROPERTY\"")
        return self

    @property
    def ga4(self) -> bool:
        return self.operating_account_type == "GOOGLE_ANALYTICS_PROPERTY"


# --------------------------------------------------------------------------- mapping
def rfc3339(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def dm_user_identifiers(event: Event, default_phone_country: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Data Manager user identifiers (each one oneof), every email and phone the event carries, at most 10;
    and the match keys present. An address counts only whole: the proto requires all four parts."""
    user, address = event.user_data, event.user_data.address
    out: list[dict[str, Any]] = []
    keys: list[str] = []
    for kind, match_key, key, values in (("email", "em", "emailAddress", [user.email, *user.other_emails]),
                                         ("phone", "ph", "phoneNumber", [user.phone, *user.other_phones])):  # fmt: skip
        for value in values:
            hashed = google_hash(kind, value, default_country=default_phone_country) if value else None
            if hashed and {key: hashed} not in out:
                out.append({key: hashed})
                if match_key not in keys:
                    keys.append(match_key)
    given = google_hash("first_name", address.first_name) if address.first_name else None
    family = google_hash("last_name", address.last_name) if address.last_name else None
    region = google_plain("country", address.country) if address.country else None
    postal = google_plain("postal_code", address.postal_code) if address.postal_code else None
    if given and family and region and postal:
        out.append({"address": {"givenName": given, "familyName": family, "regionCode": region, "postalCode": postal}})
        keys += ["fn", "ln"]
    return out[:MAX_USER_IDENTIFIERS], keys


def param_string(value: Any) -> str:
    """An event or item parameter value as Data Manager takes it: "the string representation" ([proto]
    EventParameter.value); booleans and whole numbers written as JSON and GA4 write them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# MP item keys with a structured Data Manager Item field ([proto] cart_data.proto Item); the rest of an
# item's keys go to additional_item_parameters
GA4_ITEM_FIELDS = {"item_id": "itemId", "price": "unitPrice", "quantity": "quantity"}
# MP device keys -> Data Manager DeviceInfo fields ([proto] device_info.proto; [doc] MP reference "device")
GA4_DEVICE_FIELDS = {"category": "category", "operating_system": "operatingSystem",
                     "operating_system_version": "operatingSystemVersion", "model": "model", "brand": "brand",
                     "browser": "browser", "browser_version": "browserVersion"}  # fmt: skip


def ga4_item(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    extra = []
    for key, value in item.items():
        field = GA4_ITEM_FIELDS.get(key)
        if field == "quantity":
            if isinstance(value, int | float) and float(value).is_integer():
                out[field] = int(value)
                continue
        elif field == "unitPrice":
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[field] = value
                continue
        elif field:
            out[field] = str(value)
            continue
        extra.append({"parameterName": key, "value": param_string(value)})
    if extra:
        out["additionalItemParameters"] = extra
    return out


def ga4_device_info(device: dict[str, Any]) -> dict[str, Any]:
    """The MP request's device as DeviceInfo: language as ISO 639-1 ("en-us" -> "en", [proto] "in ISO 639-1
    format"), screen_resolution "WxH" as screen_width / screen_height."""
    out: dict[str, Any] = {field: device[key] for key, field in GA4_DEVICE_FIELDS.items() if device.get(key)}
    language = str(device.get("language") or "").split("-")[0].split("_")[0].lower()
    if re.fullmatch(r"[a-z]{2}", language):
        out["languageCode"] = language
    width, _, height = str(device.get("screen_resolution") or "").partition("x")
    if width.isdigit() and height.isdigit():
        out["screenWidth"], out["screenHeight"] = int(width), int(height)
    return out


def _consent(value: bool | None) -> str | None:
    return None if value is None else ("CONSENT_GRANTED" if value else "CONSENT_DENIED")


class DataManager(Destination):
    type = "data_manager"
    test_mode = "validate_only"
    max_batch = MAX_EVENTS_PER_REQUEST
    conversions_only = True
    Settings = DataManagerSettings
    settings: DataManagerSettings
    optional_secrets = ("credentials_env",)  # without a key: Application Default Credentials

    def __init__(self, id: str, settings: DataManagerSettings, secrets) -> None:
        super().__init__(id, settings, secrets)
        self.credentials = ServiceAccountToken(self.secrets.get("credentials"))
        self.ga4_mapping: Ga4MeasurementProtocol | None = None
        if settings.ga4:
            self.conversions_only = False  # type: ignore[misc]  # a GA4 property takes every event
            self.ga4_mapping = Ga4MeasurementProtocol(id, Ga4Settings(
                measurement_id=settings.measurement_id, event_map=settings.event_map,
                send_user_data=settings.send_user_identifiers, send_client_context=settings.send_device_info,
                default_phone_country=settings.default_phone_country), {})  # fmt: skip
            self.ga4_mapping.now = lambda: self.now()  # type: ignore[method-assign]

    # ------------------------------------------------------------------ transform side
    def prepare(self, event: Event) -> Prepared | None:
        if self.ga4_mapping is not None:
            return self._prepare_ga4(event)
        # a tag's event_name (tagpipe.tagging) names the conversion action id itself
        action = event.vendor_event_name or self.settings.conversion_actions.get(event.name)
        if not action:
            return None
        if not action.isdigit():
            raise InvalidInput("data_manager:invalid_conversion_action", "a tag's event_name must be a conversion action id")
        notes: list[str] = []
        identifiers: list[str] = []
        payload: dict[str, Any] = {"destinationReferences": [action], "eventTimestamp": rfc3339(event.timestamp)}
        ecommerce = event.ecommerce
        if ecommerce.transaction_id:
            payload["transactionId"] = ecommerce.transaction_id
        if ecommerce.currency:
            payload["currency"] = ecommerce.currency.upper()
        if ecommerce.value is not None:
            payload["conversionValue"] = ecommerce.value
        payload["eventSource"] = EVENT_SOURCES.get(event.action_source, "OTHER")

        ad_ids: dict[str, Any] = {}
        clicks = [(k, getattr(event.click_ids, k)) for k in CLICK_ID_KEYS if getattr(event.click_ids, k)]
        if clicks:  # exactly one ([doc] "only one of gclid, gbraid, wbraid"), gclid first
            key, value = clicks[0]
            ad_ids[key] = value
            identifiers.append(key)
            if len(clicks) > 1:
                notes.append("data_manager:extra_click_ids_dropped:" + ",".join(k for k, _ in clicks[1:]))
        session_attributes = event.params.get("session_attributes")  # gtag's encoded session, when a tag passes it
        if isinstance(session_attributes, str) and session_attributes:
            ad_ids["sessionAttributes"] = session_attributes
        if ad_ids:
            payload["adIdentifiers"] = ad_ids

        if self.settings.send_user_identifiers:
            if event.consent.ad_user_data is False:
                if event.user_data.email or event.user_data.phone:
                    notes.append("data_manager:user_identifiers_withheld_no_consent")
            else:
                ids, keys = dm_user_identifiers(event, self.settings.default_phone_country)
                if ids:
                    payload["userData"] = {"userIdentifiers": ids}
                    identifiers += keys
        if not clicks and "userData" not in payload:
            raise InvalidInput("data_manager:no_match_key",
                               "no click id (gclid/gbraid/wbraid) and no user identifiers: Google cannot attribute it")  # fmt: skip
        consent = {k: v for k, v in (("adUserData", _consent(event.consent.ad_user_data)),
                                     ("adPersonalization", _consent(event.consent.ad_personalization))) if v}  # fmt: skip
        if consent:
            payload["consent"] = consent
        if self.settings.send_device_info:
            device: dict[str, str] = {}
            if event.client.user_agent:
                device["userAgent"] = event.client.user_agent
            country = (event.client.geo.get("country") or "").upper()
            if event.client.ip:
                if country and country not in NO_IP_COUNTRIES:
                    device["ipAddress"] = event.client.ip
                else:
                    notes.append("data_manager:ip_withheld_eea_or_unknown")
            if device:
                payload["eventDeviceInfo"] = device
        items = [
            {k: v for k, v in (("merchantProductId", item.item_id),
                               ("quantity", int(item.quantity) if item.quantity is not None else None),
                               ("unitPrice", item.price)) if v is not None}  # fmt: skip
            for item in ecommerce.items if item.item_id
        ]
        if items:
            payload["cartData"] = {"items": items}
        return Prepared(event.vendor_event_name or event.name, payload, identifiers, notes)

    def _prepare_ga4(self, event: Event) -> Prepared:
        """The event as the ga4 destination maps it for the Measurement Protocol, moved onto a Data Manager
        Event by Google's MP upgrade field mappings (module docstring)."""
        mp = self.ga4_mapping.prepare(event)  # type: ignore[union-attr]
        assert mp is not None
        request, params = mp.payload[REQUEST_KEY], dict(mp.payload["params"])
        payload: dict[str, Any] = {
            "destinationReferences": [self.settings.measurement_id],
            "eventName": mp.payload["name"],
            "eventTimestamp": rfc3339(event.timestamp),
            "eventSource": "WEB",
            "clientId": request["client_id"],
        }
        if "user_id" in request:
            payload["userId"] = request["user_id"]
        for key, field in (("transaction_id", "transactionId"), ("currency", "currency"), ("value", "conversionValue")):
            if key in params:
                payload[field] = params.pop(key)
        if "currency" in payload:
            payload["currency"] = str(payload["currency"]).upper()
        if "items" in params:
            payload["cartData"] = {"items": [ga4_item(item) for item in params.pop("items")]}
        if params:
            payload["additionalEventParameters"] = [{"parameterName": k, "value": param_string(v)} for k, v in params.items()]
        if request.get("user_properties"):
            payload["userProperties"] = {"additionalUserProperties": [
                {"propertyName": k, "value": param_string(v["value"])} for k, v in request["user_properties"].items()]}  # fmt: skip
        consent = {k: f"CONSENT_{v}" for k, v in (("adUserData", (request.get("consent") or {}).get("ad_user_data")),
                                                   ("adPersonalization", (request.get("consent") or {}).get("ad_personalization"))) if v}  # fmt: skip
        if consent:
            payload["consent"] = consent
        identifiers = ["client_id"] + (["user_id"] if "userId" in payload else [])
        if "user_data" in request:  # the ga4 mapping decided it may be sent (setting, consent)
            ids, keys = dm_user_identifiers(event, self.settings.default_phone_country)
            if ids:
                payload["userData"] = {"userIdentifiers": ids}
                identifiers += keys
        device = ga4_device_info(request.get("device") or {})
        if self.settings.send_device_info:
            if event.client.user_agent:
                device["userAgent"] = event.client.user_agent
            if request.get("ip_override"):
                device["ipAddress"] = request["ip_override"]
        if device:
            payload["eventDeviceInfo"] = device
        location = request.get("user_location") or {}
        where = {field: location[key] for key, field in (("city", "city"), ("country_id", "regionCode"),
                                                         ("region_id", "subdivisionCode")) if location.get(key)}  # fmt: skip
        if where:
            payload["eventLocation"] = where
        # GA4's own rules keep their ga4: codes (a refused name, a missing client id, a dropped parameter)
        return Prepared(mp.event_name, payload, identifiers, mp.notes)

    # ------------------------------------------------------------------ deliver side
    def before_send(self, client: httpx.Client) -> None:
        self.credentials.ensure()

    def _destination(self, reference: str) -> dict[str, Any]:
        s = self.settings
        destination: dict[str, Any] = {
            "reference": reference,
            "operatingAccount": {"accountId": s.operating_account_id, "accountType": s.operating_account_type},
            "productDestinationId": reference,  # the conversion action id, or the GA4 measurement id
        }
        if s.login_account_id:
            destination["loginAccount"] = {"accountId": s.login_account_id, "accountType": s.login_account_type}
        return destination

    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        if not self.credentials.valid():
            raise RetryableDelivery("data_manager:no_access_token", "before_send must run before build_requests")
        url = f"{self.settings.endpoint.rstrip('/')}/v1/events:ingest"
        headers = {"Authorization": f"Bearer {self.credentials.token}"}
        batch = Batch()
        # one request holds at most 10 destinations: group the tasks by conversion action, 10 actions a request
        by_action: dict[str, list[DeliveryTask]] = {}
        for task in tasks:
            by_action.setdefault(task.payload["destinationReferences"][0], []).append(task)
        actions = list(by_action)
        for start in range(0, len(actions), MAX_DESTINATIONS_PER_REQUEST):
            group = [t for a in actions[start:start + MAX_DESTINATIONS_PER_REQUEST] for t in by_action[a]]
            for part in chunks(group, self.max_batch):
                refs = list(dict.fromkeys(t.payload["destinationReferences"][0] for t in part))
                body: dict[str, Any] = {"destinations": [self._destination(a) for a in refs],
                                        "events": [t.payload for t in part], "encoding": "HEX"}  # fmt: skip
                if self.settings.validate_only:
                    body["validateOnly"] = True
                batch.requests.append(VendorRequest("POST", url, [t.event_uid for t in part], headers=headers, json=body))
        return batch

    def classify(self, request: VendorRequest, response: httpx.Response | None, error: Exception | None) -> Result:
        if error is not None or response is None:
            return classify_http(response, error)
        body = response_json(response)
        body = body if isinstance(body, dict) else {}
        if 200 <= response.status_code < 300:
            request_id = body.get("requestId")
            if self.settings.validate_only:
                return Result(Verdict.OK, "ok", "validated by Google (validate_only: nothing recorded)")
            return Result(Verdict.OK, "ok", f"request_id {request_id}" if isinstance(request_id, str) else "")
        status_obj, status = rpc_error(body, response.status_code)
        reasons, violations = error_details(status_obj)
        first = f" ({reasons[0]})" if reasons else ""
        if status == "UNAUTHENTICATED":
            self.credentials.invalidate()
            return Result(Verdict.RETRY, "data_manager:unauthenticated", "access token refused; refreshing")
        verdict, description = google_rpc_verdict(status, response.status_code)
        reason = f"data_manager:{(reasons[0] if reasons else status).lower()}" if (reasons or status) else f"http:{response.status_code}"
        per_event: dict[str, tuple[Verdict, str, str]] = {}
        for index, field_reason, field in violations:
            if 0 <= index < len(request.event_uids):
                code = f"data_manager:{(field_reason or 'invalid_argument').lower()}"
                per_event.setdefault(request.event_uids[index], (Verdict.PERMANENT, code, f"{field}: {field_reason}"))
        if per_event and verdict is Verdict.PERMANENT:
            # fail-fast validation: the events it names are refused, the rest were fine and go again
            return Result(Verdict.RETRY, reason, f"{len(per_event)} event(s) refused by validation", 0.0, per_event)
        retry_after = retry_after_seconds(response) if verdict in (Verdict.RETRY, Verdict.THROTTLE) else None
        return Result(verdict, reason, description + first, retry_after)

    # ------------------------------------------------------------------ asynchronous errors
    def request_status(self, client: httpx.Client, request_id: str) -> dict[str, Any]:
        """GET /v1/requestStatus:retrieve for one request id: Google's processing result per destination."""
        token = self.credentials.ensure()
        url = f"{self.settings.endpoint.rstrip('/')}/v1/requestStatus:retrieve"
        response = client.get(url, params={"requestId": request_id}, headers={"Authorization": f"Bearer {token}"},
                              timeout=self.settings.timeout)  # fmt: skip
        body = response_json(response)
        if response.status_code != 200 or not isinstance(body, dict):
            status = (body.get("error") or {}).get("status") if isinstance(body, dict) else None
            return {"requestId": request_id, "error": status or f"HTTP {response.status_code}"}
        return {"requestId": request_id, **body}


def error_details(status: dict[str, Any]) -> tuple[list[str], list[tuple[int, str, str]]]:
    """google.rpc.Status details: the ErrorInfo reasons, and (event index, reason, field) of each BadRequest
    field violation that names an event."""
    reasons: list[str] = []
    violations: list[tuple[int, str, str]] = []
    for detail in status.get("details") or []:
        if not isinstance(detail, dict):
            continue
        if isinstance(detail.get("reason"), str):
            reasons.append(detail["reason"])
        for violation in detail.get("fieldViolations") or []:
            if not isinstance(violation, dict):
                continue
            field = str(violation.get("field") or "")
            if m := _EVENT_INDEX.search(field):
                violations.append((int(m.group(1)), str(violation.get("reason") or ""), field[:120]))
    return reasons, violations
