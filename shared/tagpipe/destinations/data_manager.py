"""Google Data Manager API: conversions for Google Ads through events:ingest (GA4 events: see DataManagerSettings).

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
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator

from tagpipe.destinations.base import (
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
    operating_account_id: str = Field(description="the Google Ads account (10 digits) that owns the conversion actions")
    # GA4 properties (GOOGLE_ANALYTICS_PROPERTY, product destination = the measurement id) are not taken yet:
    # their events need the event name / client id fields, which the protos read here do not have
    operating_account_type: Literal["GOOGLE_ADS"] = "GOOGLE_ADS"
    login_account_id: str | None = Field(None, description="a manager account the credentials act through")
    login_account_type: Literal["GOOGLE_ADS", "DATA_PARTNER"] = "GOOGLE_ADS"
    # canonical event name -> conversion action id (product_destination_id); unmapped events are not sent
    conversion_actions: dict[str, str] = Field(default_factory=dict)
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

    # ------------------------------------------------------------------ transform side
    def prepare(self, event: Event) -> Prepared | None:
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

    # ------------------------------------------------------------------ deliver side
    def before_send(self, client: httpx.Client) -> None:
        self.credentials.ensure()

    def _destination(self, action: str) -> dict[str, Any]:
        s = self.settings
        destination: dict[str, Any] = {
            "reference": action,
            "operatingAccount": {"accountId": s.operating_account_id, "accountType": s.operating_account_type},
            "productDestinationId": action,
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
