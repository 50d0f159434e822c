"""Google Ads click conversions (incl. enhanced conversions for leads) over the REST API.

    POST {endpoint}/v{N}/customers/{customer_id}:uploadClickConversions
    Authorization: Bearer <OAuth2 access token>   developer-token: ..   [login-customer-id: ..]
    {"conversions": [<ClickConversion>, ...], "partialFailure": true}

Vendor facts (VENDORS.md §4; [doc] developers.google.com/google-ads/api/reference/rpc/v26/...):
- partialFailure MUST be true ("omitting the field ... causes the entire request to fail", [doc]
  UploadClickConversionsRequest v23-v26). Row errors come back in partialFailureError (google.rpc.Status
  whose details hold a GoogleAdsFailure); errors[].location.fieldPathElements[0] = {fieldName:
  "conversions", index: i} names the row ([doc] best-practices/partial-failures; the REST JSON shape as
  seen in public clients).
- conversionDateTime is "yyyy-mm-dd hh:mm:ss+hh:mm" with the offset, here in the account's time zone.
- gclid / gbraid / wbraid: exactly one ([code] google-ads-python upload_offline_conversion.py).
- userIdentifiers: at most 5, each a oneof: hashedEmail | hashedPhoneNumber | addressInfo ([doc/code]).
  Email/phone/names/street are hashed (tagpipe.hashing.google_hash, Data Manager rules); city, state,
  postal code and country are NOT hashed ([doc] upload-online).
- consent: only adUserData. adPersonalization "can only be set for OfflineUserDataJobService and
  UserDataService" ([doc] Consent reference v16-v26).

Shaped for a later Data Manager API destination (docs/destinations.md): the pieces that do not depend on
the Ads endpoint -- GoogleOAuth (token refresh + cache), user_identifiers() (hashing rules),
google_rpc_verdict() (google.rpc status table) and conversion_date_time() -- are module-level and
importable; only GoogleAds itself knows the uploadClickConversions URL and body.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from tagpipe.errors import ConfigError, InvalidInput, PermanentDelivery, RetryableDelivery
from tagpipe.hashing import google_hash, google_plain
from tagpipe.models import DeliveryTask, Event

API_VERSION = 26  # VENDORS §4: "The current version is v26" [doc]
MAX_CONVERSIONS_PER_REQUEST = 2000  # [unverified] Google Ads quotas page
MAX_USER_IDENTIFIERS = 5
TOKEN_REFRESH_MARGIN_SECONDS = 60
CONVERSION_ACTION_RE = re.compile(r"^customers/\d+/conversionActions/\d+$")

# --------------------------------------------------------------------------- error table (data)
# google.rpc status -> verdict. Sources: [doc] https://developers.google.com/google-ads/api/docs/best-practices/
# error-types (UNAUTHENTICATED/PERMISSION_DENIED/INVALID_ARGUMENT: fix, don't retry; RESOURCE_EXHAUSTED:
# back off; INTERNAL/UNAVAILABLE/DEADLINE_EXCEEDED: retry with backoff) [unverified this session: page
# summary only], and https://cloud.google.com/apis/design/errors (the google.rpc.Code <-> HTTP mapping).
GOOGLE_RPC_ERRORS: dict[str, tuple[Verdict, str]] = {
    "UNAUTHENTICATED": (Verdict.PERMANENT, "credentials refused (developer token, OAuth client or user)"),
    "PERMISSION_DENIED": (Verdict.PERMANENT, "the OAuth user has no access to this customer"),
    "INVALID_ARGUMENT": (Verdict.PERMANENT, "the request is invalid"),
    "NOT_FOUND": (Verdict.PERMANENT, "customer or resource not found"),
    "FAILED_PRECONDITION": (Verdict.PERMANENT, "precondition failed (e.g. customer data terms not accepted)"),
    "RESOURCE_EXHAUSTED": (Verdict.THROTTLE, "quota or rate limit exhausted"),
    "ABORTED": (Verdict.RETRY, "aborted, retry"),
    "INTERNAL": (Verdict.RETRY, "Google internal error"),
    "UNAVAILABLE": (Verdict.RETRY, "service unavailable"),
    "DEADLINE_EXCEEDED": (Verdict.RETRY, "deadline exceeded"),
    "UNKNOWN": (Verdict.RETRY, "unknown Google error"),
}
# authentication errors a fresh access token fixes: retry after dropping the cached token
TOKEN_ERRORS = frozenset({"OAUTH_TOKEN_EXPIRED", "OAUTH_TOKEN_INVALID", "OAUTH_TOKEN_REVOKED"})
HTTP_TO_RPC = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}  # fmt: skip


def google_rpc_verdict(status: str, http_status: int) -> tuple[Verdict, str]:
    if status in GOOGLE_RPC_ERRORS:
        return GOOGLE_RPC_ERRORS[status]
    if http_status >= 500:
        return Verdict.RETRY, "Google server error"
    return Verdict.PERMANENT, "Google refused the request"


def rpc_error(body: dict[str, Any], http_status: int) -> tuple[dict[str, Any], str]:
    """A Google API error answer's google.rpc.Status object and its status name (from the HTTP status when
    the body has none)."""
    status_obj = body.get("error") if isinstance(body.get("error"), dict) else {}
    return status_obj, str(status_obj.get("status") or HTTP_TO_RPC.get(http_status, ""))


def failure_error_codes(status: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    """(category, code, conversions index) for each GoogleAdsFailure error in a google.rpc.Status."""
    out = []
    for detail in status.get("details") or []:
        if not isinstance(detail, dict):
            continue
        for err in detail.get("errors") or []:
            if not isinstance(err, dict):
                continue
            code = err.get("errorCode") or {}
            category, value = next(iter(code.items()), ("unknown", "UNKNOWN")) if isinstance(code, dict) else ("unknown", "UNKNOWN")
            index = None
            for element in ((err.get("location") or {}).get("fieldPathElements") or [])[:1]:
                if isinstance(element, dict) and element.get("fieldName") in ("conversions", "operations"):
                    index = element.get("index")
            out.append((str(category), str(value), index if isinstance(index, int) else None))
    return out


def retry_delay_seconds(status: dict[str, Any]) -> float | None:
    """QuotaErrorDetails.retryDelay ("30s") when Google sends one."""
    for detail in status.get("details") or []:
        for err in (detail.get("errors") or []) if isinstance(detail, dict) else []:
            delay = ((err.get("details") or {}).get("quotaErrorDetails") or {}).get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None


# --------------------------------------------------------------------------- OAuth (reusable)
class GoogleOAuth:
    """OAuth2 refresh-token flow with an in-process cache; thread-safe. The only I/O, done in before_send."""

    def __init__(self, token_endpoint: str, client_id: str, client_secret: str, refresh_token: str,
                 clock: Callable[[], float] = time.time, timeout: float = 10.0) -> None:  # fmt: skip
        self.token_endpoint = token_endpoint
        self._form = {"grant_type": "refresh_token", "client_id": client_id, "client_secret": client_secret,
                      "refresh_token": refresh_token}  # fmt: skip
        self._clock, self._timeout = clock, timeout
        self._lock = threading.Lock()
        self.access_token: str | None = None
        self.expires_at = 0.0

    def valid(self) -> bool:
        return bool(self.access_token) and self._clock() < self.expires_at - TOKEN_REFRESH_MARGIN_SECONDS

    def invalidate(self) -> None:
        with self._lock:
            self.access_token, self.expires_at = None, 0.0

    def ensure(self, client: httpx.Client) -> str:
        with self._lock:
            if self.valid():
                return self.access_token  # type: ignore[return-value]
            try:
                response = client.post(self.token_endpoint, data=self._form, timeout=self._timeout)
            except httpx.HTTPError as exc:
                raise RetryableDelivery("google_ads:oauth_network", f"token endpoint unreachable ({type(exc).__name__})") from None
            body = response_json(response) or {}
            if response.status_code == 429 or response.status_code >= 500:
                raise RetryableDelivery(
                    "google_ads:oauth_unavailable", f"token endpoint answered {response.status_code}",
                    retry_after_seconds(response),
                )  # fmt: skip
            if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
                error = body.get("error") if isinstance(body, dict) else None
                # invalid_grant: the refresh token expired or was revoked; invalid_client: wrong id/secret
                raise PermanentDelivery(f"google_ads:oauth_{error or response.status_code}", "OAuth refresh refused; re-authorise")
            self.access_token = str(body["access_token"])
            self.expires_at = self._clock() + float(body.get("expires_in") or 3600)
            return self.access_token


# --------------------------------------------------------------------------- mapping (reusable)
def conversion_date_time(timestamp: float, zone: ZoneInfo) -> str:
    """yyyy-mm-dd hh:mm:ss+hh:mm in the account's time zone."""
    text = datetime.fromtimestamp(timestamp, zone).strftime("%Y-%m-%d %H:%M:%S%z")
    return f"{text[:-2]}:{text[-2:]}"


def user_identifiers(event: Event, default_phone_country: str | None, notes: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Google user identifiers, one identifier per object, at most 5; and the match keys present."""
    user, address = event.user_data, event.user_data.address
    out: list[dict[str, Any]] = []
    keys: list[str] = []
    email = google_hash("email", user.email) if user.email else None
    if email:
        out.append({"hashedEmail": email})
        keys.append("em")
    phone = google_hash("phone", user.phone, default_country=default_phone_country) if user.phone else None
    if phone:
        out.append({"hashedPhoneNumber": phone})
        keys.append("ph")
    info: dict[str, Any] = {}
    for kind, key in (("first_name", "hashedFirstName"), ("last_name", "hashedLastName"), ("street", "hashedStreetAddress")):
        raw = getattr(address, kind)
        hashed = google_hash(kind, raw) if raw else None
        if hashed:
            info[key] = hashed
    for kind, key in (("city", "city"), ("region", "state"), ("postal_code", "postalCode"), ("country", "countryCode")):
        raw = getattr(address, kind)
        plain = google_plain(kind, raw) if raw else None
        if plain:
            info[key] = plain
    # an address matches only as first name + last name + country + postal code together
    # ([unverified] Google Ads enhanced conversions address rule); a partial one would be refused
    if {"hashedFirstName", "hashedLastName", "countryCode", "postalCode"} <= info.keys():
        out.append({"addressInfo": info})
        keys += ["fn", "ln"]
    elif info:
        notes.append("google_ads:address_incomplete")
    for identifier in out:
        identifier["userIdentifierSource"] = "FIRST_PARTY"
    return out[:MAX_USER_IDENTIFIERS], keys


class GoogleAdsSettings(HttpDestinationSettings):
    customer_id: str = Field(description="the Ads account the conversions belong to (dashes allowed)")
    login_customer_id: str | None = Field(None, description="the manager account id, when access goes through one")
    api_version: int = API_VERSION
    endpoint: str = "https://googleads.googleapis.com"
    token_endpoint: str = "https://oauth2.googleapis.com/token"
    timeout: float = 10.0
    developer_token_env: str = "GOOGLE_ADS_DEVELOPER_TOKEN"
    client_id_env: str = "GOOGLE_ADS_CLIENT_ID"
    client_secret_env: str = "GOOGLE_ADS_CLIENT_SECRET"
    refresh_token_env: str = "GOOGLE_ADS_REFRESH_TOKEN"
    # canonical event name -> conversion action resource name; unmapped events are not sent (prepare: None)
    conversion_actions: dict[str, str] = Field(default_factory=dict)
    time_zone: str = "UTC"  # the Ads account's time zone (Account settings), used for conversionDateTime
    send_user_identifiers: bool = True
    validate_only: bool = Field(False, description="Google validates the upload and records nothing (set-up, tests)")

    @field_validator("customer_id", "login_customer_id")
    @classmethod
    def _digits(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace("-", "")
        if not digits.isdigit() or len(digits) != 10:
            raise ValueError("a Google Ads customer id has 10 digits, e.g. 123-456-7890")
        return digits

    @field_validator("conversion_actions")
    @classmethod
    def _actions(cls, value: dict[str, str]) -> dict[str, str]:
        for name, action in value.items():
            if not CONVERSION_ACTION_RE.match(action):
                raise ValueError(f"{name}: expected customers/<id>/conversionActions/<id>, got {action!r}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from None
        return value


class GoogleAds(Destination):
    type = "google_ads"
    test_mode = "validate_only"
    max_batch = MAX_CONVERSIONS_PER_REQUEST
    conversions_only = True  # an upload is a click conversion
    Settings = GoogleAdsSettings
    settings: GoogleAdsSettings

    def __init__(self, id: str, settings: GoogleAdsSettings, secrets) -> None:
        super().__init__(id, settings, secrets)
        self.zone = ZoneInfo(settings.time_zone)
        self.oauth = GoogleOAuth(
            settings.token_endpoint, self.secrets.get("client_id", ""), self.secrets.get("client_secret", ""),
            self.secrets.get("refresh_token", ""), clock=lambda: self.now(), timeout=settings.timeout,
        )  # fmt: skip

    # ------------------------------------------------------------------ transform side
    def prepare(self, event: Event) -> Prepared | None:
        # a tag's event_name (Event.vendor_event_name, tagpipe.tagging) names the conversion action itself,
        # customers/<id>/conversionActions/<id>, and is sent verbatim instead of the conversion_actions mapping
        action = event.vendor_event_name or self.settings.conversion_actions.get(event.name)
        if not action:
            return None
        if event.vendor_event_name and not CONVERSION_ACTION_RE.match(action):
            raise InvalidInput("google_ads:invalid_conversion_action",
                               "a tag's event_name must be customers/<id>/conversionActions/<id>")
        notes: list[str] = []
        conversion: dict[str, Any] = {"conversionAction": action}
        identifiers: list[str] = []
        clicks = [(k, getattr(event.click_ids, k)) for k in ("gclid", "gbraid", "wbraid") if getattr(event.click_ids, k)]
        if clicks:  # exactly one, gclid preferred
            key, value = clicks[0]
            conversion[key] = value
            identifiers.append(key)
            if len(clicks) > 1:
                notes.append("google_ads:extra_click_ids_dropped:" + ",".join(k for k, _ in clicks[1:]))
        conversion["conversionDateTime"] = conversion_date_time(event.timestamp, self.zone)
        ecommerce = event.ecommerce
        if ecommerce.value is not None:
            conversion["conversionValue"] = ecommerce.value
        if ecommerce.currency:
            conversion["currencyCode"] = ecommerce.currency.upper()
        if ecommerce.transaction_id:
            conversion["orderId"] = ecommerce.transaction_id
        if self.settings.send_user_identifiers:
            if event.consent.ad_user_data is False:
                if event.user_data.email or event.user_data.phone:
                    notes.append("google_ads:user_identifiers_withheld_no_consent")
            else:
                ids, keys = user_identifiers(event, self.settings.default_phone_country, notes)
                if ids:
                    conversion["userIdentifiers"] = ids
                    identifiers += keys
        if not clicks and "userIdentifiers" not in conversion:
            raise InvalidInput(
                "google_ads:no_match_key",
                "no click id (gclid/gbraid/wbraid) and no user identifiers: Google Ads cannot attribute it",
            )
        if event.consent.ad_user_data is not None:
            conversion["consent"] = {"adUserData": "GRANTED" if event.consent.ad_user_data else "DENIED"}
        # tag: the action is the vendor event name, so deliver's dedup key tells two tags' actions apart
        return Prepared(event.vendor_event_name or event.name, conversion, identifiers, notes)

    # ------------------------------------------------------------------ deliver side
    def before_send(self, client: httpx.Client) -> None:
        missing = [n for n in ("client_id", "client_secret", "refresh_token", "developer_token") if not self.secrets.get(n)]
        if missing:
            env = getattr(self.settings, f"{missing[0]}_env")
            raise ConfigError(f"destinations.{self.id}.{missing[0]}_env", f"the environment variable {env} is not set",
                              "set the OAuth client, refresh token and developer token variables")  # fmt: skip
        self.oauth.ensure(client)

    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        if not self.oauth.valid():
            raise RetryableDelivery("google_ads:no_access_token", "before_send must run before build_requests")
        s = self.settings
        url = f"{s.endpoint.rstrip('/')}/v{s.api_version}/customers/{s.customer_id}:uploadClickConversions"
        headers = {"Authorization": f"Bearer {self.oauth.access_token}", "developer-token": self.secrets["developer_token"]}
        if s.login_customer_id:
            headers["login-customer-id"] = s.login_customer_id
        batch = Batch()
        for part in chunks(tasks, self.max_batch):
            body = {"conversions": [t.payload for t in part], "partialFailure": True}
            if s.validate_only:
                body["validateOnly"] = True  # [doc] UploadClickConversionsRequest.validate_only
            batch.requests.append(VendorRequest("POST", url, [t.event_uid for t in part], headers=headers, json=body))
        return batch

    def classify(self, request: VendorRequest, response: httpx.Response | None, error: Exception | None) -> Result:
        if error is not None or response is None:
            return classify_http(response, error)
        body = response_json(response)
        body = body if isinstance(body, dict) else {}
        if 200 <= response.status_code < 300:
            failure = body.get("partialFailureError")
            if not isinstance(failure, dict):
                return Result(Verdict.OK, "ok")
            per_event: dict[str, tuple[Verdict, str, str]] = {}
            unplaced = []
            for category, code, index in failure_error_codes(failure):
                if index is not None and 0 <= index < len(request.event_uids):
                    per_event.setdefault(request.event_uids[index], (Verdict.PERMANENT, f"google_ads:{code}", f"{category}.{code}"))
                else:
                    unplaced.append((category, code))
            if unplaced and not per_event:
                category, code = unplaced[0]
                return Result(Verdict.PERMANENT, f"google_ads:{code}", f"{category}.{code}")
            return Result(Verdict.OK, "ok", f"{len(per_event)} conversion(s) refused", per_event=per_event)

        status_obj, status = rpc_error(body, response.status_code)
        codes = failure_error_codes(status_obj)
        first = f" {codes[0][0]}.{codes[0][1]}" if codes else ""
        if status == "UNAUTHENTICATED":
            self.oauth.invalidate()
            if any(code in TOKEN_ERRORS for _, code, _ in codes):
                return Result(Verdict.RETRY, "google_ads:oauth_token_expired", "access token refused; refreshing" + first)
            return Result(Verdict.PERMANENT, "google_ads:unauthenticated", GOOGLE_RPC_ERRORS[status][1] + first)
        verdict, description = google_rpc_verdict(status, response.status_code)
        retry_after = None
        if verdict in (Verdict.RETRY, Verdict.THROTTLE):
            retry_after = retry_delay_seconds(status_obj) or retry_after_seconds(response)
        reason = f"google_ads:{status.lower()}" if status else f"http:{response.status_code}"
        return Result(verdict, reason, description + first, retry_after)
