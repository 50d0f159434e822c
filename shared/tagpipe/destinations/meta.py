"""Meta Conversions API (CAPI): one canonical event -> one Meta server event.

    POST {endpoint}/{api_version}/{pixel_id}/events?access_token=..[&appsecret_proof=..]
    {"data": [<server event>, ...], "test_event_code"?: "...", "partner_agent": "tagpipe"}

Vendor facts (VENDORS.md §1; sources cited there and beside each table below):
- event_time is Unix *seconds*; one event older than 7 days fails the *whole* request ([doc] server-event
  parameters page), so build_requests re-checks the window at send time and takes such events out.
- Website events need event_source_url, client_user_agent and action_source ([doc] same page).
- em ph fn ln ge db ct st zp country external_id (and f5first f5last fi dobd dobm doby, single strings) are
  normalised + hashed by tagpipe.hashing.meta_hash (SDK-exact, facebook-business 26.0.3; `hashing = "docs"`:
  meta_hash_doc) and sent as arrays; client_ip_address, client_user_agent, fbc, fbp, lead_id,
  subscription_id, fb_login_id, page_id, ctwa_clid are never hashed ([doc] customer-information parameters).
  external_id also carries the hit's user id (external_id_from_user_id) and is hashed unless
  hash_external_id = false (Meta recommends hashing; the SDK sends it as given).
- At most 1,000 events per request ([unverified] Meta "Batch requests"; every integration uses it).
- Dedup with the browser pixel is event_name + event_id, so names are case-exact (mappings/meta.toml).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Literal
from urllib.parse import urlencode

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
    chunks,
    classify_http,
    group_by_request,
    mask_url,
    response_json,
    retry_after_seconds,
    split_request,
)
from tagpipe.errors import InvalidInput
from tagpipe.hashing import dedup, meta_hash, meta_hash_doc
from tagpipe.models import DeliveryTask, Event, Item

MAX_AGE_SECONDS = 7 * 24 * 3600  # [doc] "If any event_time in data is greater than 7 days in the past ..."
SEND_MARGIN_SECONDS = 120  # an event this close to the 7-day edge may cross it in flight: refuse it
MAX_FUTURE_SECONDS = 300  # clock skew we tolerate for event_time in the future

# user_data keys Meta wants hashed, in payload order ([sdk] user_data.py normalize); the last six are single
# strings, the others arrays.
SCALAR_HASHED_KEYS = ("f5first", "f5last", "fi", "dobd", "dobm", "doby")
HASHED_KEYS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id", *SCALAR_HASHED_KEYS)
# ids sent as given, never hashed ([doc] customer-information parameters; [sdk] user_data.py)
UNHASHED_IDS = ("lead_id", "subscription_id", "fb_login_id", "page_id")

# custom_data keys the SDK knows (facebook_business/adobjects/serverside/custom_data.py, [sdk]); a custom
# param with one of these names never overwrites what we mapped from the canonical event.
STANDARD_CUSTOM_KEYS = frozenset(
    {
        "value", "currency", "content_name", "content_category", "content_ids", "contents", "content_type",
        "order_id", "predicted_ltv", "num_items", "status", "search_string", "item_number",
        "delivery_category", "net_revenue", "custom_properties",
    }
)  # fmt: skip

# standard custom_data keys taken from an event's params when the params carry them (an explicit num_items
# wins over the count of the items), with the SDK's type for each ([sdk] custom_data.py: num_items int,
# predicted_ltv / net_revenue float, delivery_category DeliveryCategory, the others str)
PARAM_CUSTOM_KEYS: dict[str, type] = {
    "num_items": int, "content_name": str, "content_category": str, "status": str, "item_number": str,
    "predicted_ltv": float, "net_revenue": float, "delivery_category": str,
}  # fmt: skip
# [sdk] delivery_category.py DeliveryCategory (custom_data and each content)
DELIVERY_CATEGORIES = frozenset({"in_store", "curbside", "home_delivery"})

# Limited Data Use location: (country, state) as Meta numbers them. [doc] "Data Processing Options for US
# Users" (developers.facebook.com/docs/marketing-apis/data-processing-options and the Audience Network
# page): "country: 1 for USA; state: 1000 for California"; 0 / 0 = "we geolocate". Meta applies LDU in
# more states (CO, CT, FL, TX, OR, MT: same page) but documents no number for them: those get 0 / 0
# and Meta geolocates them ([unverified] any other number).
LDU_LOCATIONS: dict[tuple[str, str], tuple[int, int]] = {("US", "CA"): (1, 1000)}
LDU_GEOLOCATE = (0, 0)


def ldu_location(country: str, region: str) -> tuple[int, int]:
    """(data_processing_options_country, _state) for a visitor's ISO country and subdivision."""
    return LDU_LOCATIONS.get((country, region), LDU_GEOLOCATE)


# --------------------------------------------------------------------------- error table (data)
# Graph API error codes -> what deliver does. Sources:
#   [doc] https://developers.facebook.com/docs/graph-api/guides/error-handling  (1, 2, 4, 17, 341, 368, 10,
#         200-299, 3, 100, 102, 190, 506; "wait and retry" vs. "fix the request / the token")
#   [doc] https://developers.facebook.com/docs/graph-api/overview/rate-limiting  (4 app, 17 user/account,
#         32 page, 613 custom-level throttling)
#   [doc] https://developers.facebook.com/docs/marketing-apis/rate-limiting  (17/2446079, 613/1487742,
#         4/1504022: "scale back your calls"; Business Use Case limits)
#   [secondary, unverified] 80000-80014 Business Use Case rate-limit codes (widely used; not read in Meta's
#         own table this session)
#   [code] rudderlabs/rudder-transformer src/v0/destinations/facebook_pixel/networkHandler.js: 100/2804003 =
#         event older than 7 days (permanent)
META_ERRORS: dict[int, tuple[Verdict, str]] = {
    1: (Verdict.RETRY, "unknown Meta error, possibly a temporary outage"),
    2: (Verdict.RETRY, "Meta service temporarily unavailable"),
    368: (Verdict.RETRY, "temporarily blocked; wait and retry"),
    4: (Verdict.THROTTLE, "application request limit reached"),
    17: (Verdict.THROTTLE, "user or ad-account request limit reached"),
    32: (Verdict.THROTTLE, "page request limit reached"),
    341: (Verdict.THROTTLE, "application limit reached"),
    613: (Verdict.THROTTLE, "calls to this API exceeded the rate limit"),
    3: (Verdict.PERMANENT, "API method not available to this app"),
    10: (Verdict.PERMANENT, "permission denied"),
    100: (Verdict.PERMANENT, "invalid parameter"),
    102: (Verdict.PERMANENT, "API session expired or invalid"),
    190: (Verdict.PERMANENT, "access token expired or invalid"),
    506: (Verdict.PERMANENT, "duplicate post"),
}
META_THROTTLE_RANGE = range(80000, 80015)  # Business Use Case rate limits
META_PERMISSION_RANGE = range(200, 300)  # permission errors
META_SUBCODES: dict[tuple[int, int], str] = {
    (100, 2804003): "event_time more than 7 days in the past (whole request refused)",
}


def meta_verdict(code: Any, subcode: Any, is_transient: Any, status: int) -> tuple[Verdict, str]:
    """The verdict and a short description for one Meta error envelope."""
    if isinstance(code, int):
        if (code, subcode) in META_SUBCODES:
            return Verdict.PERMANENT, META_SUBCODES[(code, subcode)]
        if code in META_ERRORS:
            return META_ERRORS[code]
        if code in META_THROTTLE_RANGE:
            return Verdict.THROTTLE, "business use case rate limit reached"
        if code in META_PERMISSION_RANGE:
            return Verdict.PERMANENT, "permission missing"
    if is_transient is True or status >= 500:
        return Verdict.RETRY, "transient Meta error"
    return Verdict.PERMANENT, "Meta refused the request"


class MetaSettings(HttpDestinationSettings):
    pixel_id: str = Field(pattern=r"^\d+$", description="the dataset / pixel id")
    api_version: str = Field("v26.0", pattern=r"^v\d+\.\d+$", description="facebook-business 26.0.3 pins v26.0")
    endpoint: str = "https://graph.facebook.com"
    timeout: float = 1.5  # Meta's recommendation for server events
    access_token_env: str = "META_ACCESS_TOKEN"
    app_secret_env: str | None = None  # optional, e.g. "META_APP_SECRET": then appsecret_proof is sent as the SDK does
    test_event_code: str | None = None  # every event goes to Test Events (an event's own code wins)
    event_map: dict[str, str] = Field(default_factory=dict)  # GA4 name -> Meta name, over mappings/meta.toml
    send_unmapped: bool = False  # send names absent from the map unchanged (as custom events)
    partner_agent: str = "tagpipe"
    hashing: Literal["sdk", "docs"] = Field(
        "sdk",
        description='"sdk": normalised byte for byte as facebook-business 26.0.3 does; "docs": as Meta\'s '
        "customer-information page and its parameter builder / pixel do (gender f/m, dates YYYYMMDD, state and "
        "country names to codes): pick the one your pixel's advanced matching agrees with (docs/destinations.md)",
    )
    external_id_from_user_id: bool = Field(
        True, description="send the hit's user id (gtag uid, the JSON API's user_id) as external_id too"
    )
    hash_external_id: bool = Field(
        True,
        description="SHA-256 external_id as Meta recommends and its pixel does; false sends it as given (the SDK's "
        "way): the pixel and CAPI must send the same form or the ids do not match",
    )
    ldu_region: str | None = Field(
        None,
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$",
        description='where LDU events come from when the visitor\'s geo is unknown, e.g. "US-CA" (a site for one state)',
    )


class MetaCapi(Destination):
    type = "meta"
    test_mode = "test_event_code"
    max_batch = 1000
    Settings = MetaSettings
    settings: MetaSettings
    optional_secrets = ("app_secret_env",)  # config does not refuse to start without it

    # ------------------------------------------------------------------ transform side
    def event_name(self, name: str, explicit: str | None = None) -> str | None:
        if explicit:  # a tag named the vendor event itself: sent verbatim, unmapped
            return explicit
        if name in self.event_map:
            return self.event_map[name]
        return name if self.settings.send_unmapped else None

    def prepare(self, event: Event) -> Prepared | None:
        name = self.event_name(event.name, event.vendor_event_name)
        if name is None:
            return None
        event_time = int(event.timestamp)
        if event_time < self.now() - MAX_AGE_SECONDS:
            raise InvalidInput("meta:event_too_old", "Meta accepts events up to 7 days old")
        if event.action_source == "website":
            missing = [
                key
                for key, value in (("event_source_url", event.page.url), ("client_user_agent", event.client.user_agent))
                if not value
            ]
            if missing:
                raise InvalidInput(
                    f"meta:missing_{missing[0]}",
                    f"Meta requires {' and '.join(missing)} for website events",
                )

        notes: list[str] = []
        user_data = self._user_data(event, notes)
        identifiers = [key for key in ("em", "ph", "fn", "ln", "external_id") if key in user_data]
        identifiers += [key for key in ("fbp", "fbc") if key in user_data]
        if event.client.ip and event.client.user_agent:
            identifiers.append("ip_ua")

        payload: dict[str, Any] = {
            "event_name": name,
            "event_time": event_time,
            "event_id": event.event_id,
            "action_source": event.action_source,
        }
        if event.page.url:
            payload["event_source_url"] = event.page.url
        if event.page.referrer:
            payload["referrer_url"] = event.page.referrer
        payload["user_data"] = user_data
        custom_data = self._custom_data(event, notes)
        if custom_data:
            payload["custom_data"] = custom_data
        # opt_out: "do not use this event for ads delivery optimisation, only for attribution" -- the
        # closest Meta signal to gtag npa=1 / ad_personalization denied.
        if event.consent.non_personalized_ads or event.consent.ad_personalization is False:
            payload["opt_out"] = True
        if event.consent.limited_data_use:
            payload["data_processing_options"] = ["LDU"]
            country, region = geo_region(event.client.geo)
            if not (country and region) and self.settings.ldu_region:
                country, _, region = self.settings.ldu_region.partition("-")
            location = ldu_location(country, region)
            payload["data_processing_options_country"], payload["data_processing_options_state"] = location
        test_code = event.test_event_code or self.settings.test_event_code
        if test_code:
            payload[REQUEST_KEY] = {"test_event_code": test_code}
        return Prepared(name, payload, identifiers, notes)

    def _user_data(self, event: Event, notes: list[str]) -> dict[str, Any]:
        user, address = event.user_data, event.user_data.address
        raw: dict[str, list[str | None]] = {
            "em": [user.email, *user.other_emails], "ph": [user.phone, *user.other_phones],
            "fn": [address.first_name], "ln": [address.last_name], "ge": [user.gender], "db": [user.date_of_birth],
            "ct": [address.city], "st": [address.region], "zp": [address.postal_code], "country": [address.country],
            "external_id": [user.external_id, event.client.user_id if self.settings.external_id_from_user_id else None],
            "f5first": [user.first_name_prefix], "f5last": [user.last_name_prefix], "fi": [user.first_initial],
            "dobd": [user.birth_day], "dobm": [user.birth_month], "doby": [user.birth_year],
        }  # fmt: skip
        out: dict[str, Any] = {}
        hash_field = meta_hash_doc if self.settings.hashing == "docs" else meta_hash
        for key in HASHED_KEYS:
            hashes = []
            for value in raw[key]:
                if value is None or value == "":
                    continue
                if key == "external_id" and not self.settings.hash_external_id:
                    if value.strip():
                        hashes.append(value.strip())  # as given, trimmed: the SDK's way
                    continue
                try:
                    hashed = hash_field(key, value, default_country=self.settings.default_phone_country)
                except (TypeError, ValueError):
                    notes.append(f"meta:invalid_{key}")  # the SDK raises on these; Meta would refuse the event
                    continue
                if hashed:
                    hashes.append(hashed)
                else:
                    notes.append(f"meta:unusable_{key}")  # present but not normalisable: dropped, on record
            if hashes:
                # arrays, except the partial-name/date keys the SDK sends as one string ([sdk] user_data.py
                # normalize); de-duplicated in order (the SDK's set() loses the order)
                out[key] = hashes[0] if key in SCALAR_HASHED_KEYS else dedup(hashes)
        for key in UNHASHED_IDS:
            if value := getattr(user, key):
                out[key] = value
        if event.click_ids.ctwa_clid:
            out["ctwa_clid"] = event.click_ids.ctwa_clid
        # never hashed ([doc] customer-information parameters; VENDORS §6.4)
        if event.client.ip:
            out["client_ip_address"] = event.client.ip
        if event.client.user_agent:
            out["client_user_agent"] = event.client.user_agent
        if event.click_ids.fbc:
            out["fbc"] = event.click_ids.fbc  # case-sensitive: byte for byte
        if event.click_ids.fbp:
            out["fbp"] = event.click_ids.fbp
        return out

    def _custom_data(self, event: Event, notes: list[str]) -> dict[str, Any]:
        ecommerce = event.ecommerce
        data: dict[str, Any] = {}
        if ecommerce.value is not None:
            data["value"] = ecommerce.value
        if ecommerce.currency:
            data["currency"] = ecommerce.currency.lower()  # the SDK lowercases; Meta accepts either
        contents = [content for item in ecommerce.items if (content := self._content(item))]
        if contents:
            data["content_ids"] = [c["id"] for c in contents]
            data["contents"] = contents
            data["content_type"] = "product"
            data["num_items"] = int(sum(c.get("quantity", 1) for c in contents))
        for key, kind in PARAM_CUSTOM_KEYS.items():
            if (given := event.params.get(key)) is None:
                continue
            value = _typed(given, kind)
            if value is None or (key == "delivery_category" and value not in DELIVERY_CATEGORIES):
                notes.append(f"meta:invalid_{key}")
            else:
                data[key] = value
        if ecommerce.transaction_id:
            data["order_id"] = ecommerce.transaction_id
        search = event.params.get("search_term")
        if isinstance(search, str) and search:
            data["search_string"] = search
        custom = {
            k: v for k, v in event.params.items() if k != "search_term" and k not in PARAM_CUSTOM_KEYS and v is not None
        }
        custom.update({f"experiment_{k}": v for k, v in event.experiments.items()})
        for key, value in sorted(custom.items()):
            if key in STANDARD_CUSTOM_KEYS or key in data:
                notes.append(f"meta:custom_key_collides:{key}")  # the SDK raises on this; we keep ours
                continue
            data[key] = value
        return data

    @staticmethod
    def _content(item: Item) -> dict[str, Any] | None:
        """One contents[] row with every field the item carries, in the SDK's order ([sdk] content.py
        Content.normalize: id quantity item_price title description brand category delivery_category)."""
        content_id = item.item_id or item.item_name  # Meta's sGTM template: item_id || item_name
        if not content_id:
            return None
        quantity = None
        if item.quantity is not None:
            quantity = int(item.quantity) if float(item.quantity).is_integer() else item.quantity
        delivery = item.custom.get("delivery_category")
        row = {
            "id": content_id, "quantity": quantity, "item_price": item.price, "title": item.item_name,
            "description": _text(item.custom.get("description")), "brand": item.item_brand,
            "category": item.item_category,
            "delivery_category": delivery if delivery in DELIVERY_CATEGORIES else None,
        }  # fmt: skip
        return {k: v for k, v in row.items() if v is not None}

    # ------------------------------------------------------------------ deliver side
    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        now = self.now()
        oldest, newest = now - MAX_AGE_SECONDS + SEND_MARGIN_SECONDS, now + MAX_FUTURE_SECONDS
        batch = Batch()
        sendable = []
        for task in tasks:
            event_time = task.payload.get("event_time")
            if not isinstance(event_time, int):
                batch.rejected.append(Rejection(task.event_uid, "meta:invalid_event_time", "event_time is not int seconds"))
            elif event_time < oldest:
                batch.rejected.append(
                    Rejection(
                        task.event_uid,
                        "meta:event_too_old",
                        "event_time is 7 days old or more at send time; Meta would refuse the whole request",
                    )
                )
            elif event_time > newest:
                batch.rejected.append(
                    Rejection(task.event_uid, "meta:event_in_future", "event_time is more than 5 minutes in the future")
                )
            else:
                sendable.append(task)
        if not sendable:
            return batch
        url = self._url()
        masked = mask_url(url, ("access_token", "appsecret_proof"))
        for fields, group in group_by_request(sendable):
            for part in chunks(group, self.max_batch):
                body: dict[str, Any] = {"data": [split_request(t.payload)[1] for t in part]}
                if fields.get("test_event_code"):
                    body["test_event_code"] = fields["test_event_code"]
                body["partner_agent"] = self.settings.partner_agent
                batch.requests.append(
                    VendorRequest("POST", url, [t.event_uid for t in part], json=body, masked_url=masked)
                )
        return batch

    def _url(self) -> str:
        token = self.required_secret("access_token", "create a system-user access token in Events Manager and set it in that variable")
        params = {"access_token": token}
        app_secret = self.secrets.get("app_secret")
        if app_secret:  # as facebook_business EventRequest.execute does
            params["appsecret_proof"] = hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        s = self.settings
        return f"{s.endpoint.rstrip('/')}/{s.api_version}/{s.pixel_id}/events?{urlencode(params)}"

    def classify(self, request: VendorRequest, response: httpx.Response | None, error: Exception | None) -> Result:
        if error is not None or response is None:
            return classify_http(response, error)
        body = response_json(response)
        envelope = body.get("error") if isinstance(body, dict) else None
        if 200 <= response.status_code < 300 and not envelope:
            received = body.get("events_received") if isinstance(body, dict) else None
            if isinstance(received, int) and received != len(request.event_uids):
                return Result(Verdict.OK, "ok", f"Meta reports {received} of {len(request.event_uids)} received")
            return Result(Verdict.OK, "ok")
        if not isinstance(envelope, dict):
            return classify_http(response, None)
        code, subcode = envelope.get("code"), envelope.get("error_subcode")
        verdict, description = meta_verdict(code, subcode, envelope.get("is_transient"), response.status_code)
        # Meta's `message` / `error_user_msg` can echo request values, so only fixed text, the short
        # error_user_title and the trace id go into detail (no PII, no token).
        extra = [f"subcode {subcode}"] if subcode else []
        if isinstance(envelope.get("error_user_title"), str):
            extra.append(envelope["error_user_title"][:80])
        if envelope.get("fbtrace_id"):
            extra.append(f"fbtrace_id {envelope['fbtrace_id']}")
        detail = description + (f" ({'; '.join(extra)})" if extra else "")
        retry_after = retry_after_seconds(response) if verdict in (Verdict.RETRY, Verdict.THROTTLE) else None
        return Result(verdict, f"meta:{code}", detail, retry_after)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _typed(value: Any, kind: type) -> Any:
    """A param as the SDK's type for its key, or None when it is not one (bools are not numbers)."""
    if isinstance(value, bool):
        return None
    if kind is str:
        return _text(value)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        return None
    if kind is int:
        return int(value) if float(value).is_integer() and value >= 0 else None
    return float(value)
