"""Snapchat Conversions API v3: canonical events -> POST /v3/{pixel_id}/events.

    POST {endpoint}/v3/{pixel_id}/events?access_token=<token>            (validate: .../events/validate)
    {"data": [{"event_name", "event_time", "event_id", "action_source": "WEB", "event_source_url",
               "user_data": {...}, "custom_data": {...}}]}

Vendor facts ([doc] developers.snap.com/api/marketing-api/Conversions-API/UsingTheAPI, .../Parameters,
.../Conversions-API; VENDORS.md §5):
- The token is a query parameter; the body's `data` array carries user_data, custom_data (and app_data for
  apps). v2 (/v2/conversion) is deprecated.
- Events may be up to 37 days old ("maximum 37 days back to be eligible"): older ones are rejected here.
- event_time is Unix seconds; event_id dedups with the Snap Pixel's event id (same name, same id).
- em and ph are normalised and hashed as the Parameters page says (tagpipe.hashing.snapchat); sc_click_id
  (the `ScCid` landing parameter, kept in `_scclid`) and sc_cookie1 (the Snap Pixel's `_scid` cookie),
  client_ip_address and client_user_agent are sent as they are ([code] stape-io/snapchat-tag template.js
  @b794160 getClickId / getSCID / setIDsCookies).
- `/events/validate` checks events without recording them ([code] the same template's `validate` option;
  [unverified] on Snap's pages read this session).
- At most 2,000 events per request ([secondary, unverified] the api-evangelist JSON schema of CAPI v3:
  "Maximum 2,000 events per request").
- Answers: 200 {"status": "VALID", ...}; a refused request is 4xx with {"status": "INVALID", "reason": ...}
  ([unverified]: the shape as Snap's partner integrations read it); 401/403 token, 429 rate limit, 5xx retry.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import Field

from tagpipe.consent import consented_user_id
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
    mask_url,
    response_json,
    vendor_refusal,
)
from tagpipe.errors import InvalidInput
from tagpipe.hashing import dedup
from tagpipe.hashing.snapchat import snapchat_hash
from tagpipe.models import DeliveryTask, Event

MAX_AGE_SECONDS = 37 * 24 * 3600  # [doc] "events can have a date (timestamp) of maximum 37 days back"

# --------------------------------------------------------------------------- error table (data)
# HTTP status -> verdict ([unverified] Snap documents no error table on the pages read; these follow its
# Marketing API's common statuses and the Conversions API's VALID/INVALID envelope)
SNAPCHAT_STATUS: dict[int, tuple[Verdict, str]] = {
    400: (Verdict.PERMANENT, "Snapchat refused the events"),
    401: (Verdict.PERMANENT, "Snapchat refused the access token"),
    403: (Verdict.PERMANENT, "the token may not send events for this pixel"),
    404: (Verdict.PERMANENT, "no such pixel"),
    413: (Verdict.PERMANENT, "request too large"),
    429: (Verdict.THROTTLE, "rate limited"),
}

ACTION_SOURCES = {"website": "WEB", "app": "MOBILE_APP", "physical_store": "OFFLINE", "system_generated": "OFFLINE"}


class SnapchatSettings(HttpDestinationSettings):
    pixel_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9-]+$", description="the Snap Pixel id")
    access_token_env: str = "SNAPCHAT_ACCESS_TOKEN"
    endpoint: str = "https://tr.snapchat.com"
    validate_only: bool = Field(False, description="POST to /events/validate: checked, nothing recorded")
    event_map: dict[str, str] = Field(default_factory=dict)  # over mappings/snapchat.toml
    send_unmapped: bool = False


class SnapchatConversions(Destination):
    type = "snapchat"
    test_mode = "validate_only"
    max_batch = 2000
    Settings = SnapchatSettings
    settings: SnapchatSettings

    # ------------------------------------------------------------------ transform side
    def prepare(self, event: Event) -> Prepared | None:
        name = self.mapped_name(event, unmapped=event.name)
        if name is None:
            return None
        event_time = int(event.timestamp)
        if event_time < self.now() - MAX_AGE_SECONDS:
            raise InvalidInput("snapchat:event_too_old", "Snapchat accepts events up to 37 days old")
        user_data = self._user_data(event)
        if not user_data:
            raise InvalidInput("snapchat:no_identifier", "the event carries no user data Snapchat can match")
        identifiers = [key for key in ("em", "ph", "fn", "ln", "external_id") if key in user_data]
        identifiers += [key for key in ("sc_click_id", "sc_cookie1") if key in user_data]
        if "client_ip_address" in user_data and "client_user_agent" in user_data:
            identifiers.append("ip_ua")
        payload: dict[str, Any] = {
            "event_name": name,
            "event_time": event_time,
            "event_id": event.event_id,
            "action_source": ACTION_SOURCES.get(event.action_source, "WEB"),
        }
        if event.page.url:
            payload["event_source_url"] = event.page.url
        payload["user_data"] = user_data
        if custom := self._custom_data(event):
            payload["custom_data"] = custom
        return Prepared(name, payload, identifiers)

    def _user_data(self, event: Event) -> dict[str, Any]:
        user, address = event.user_data, event.user_data.address
        raw: dict[str, list[str | None]] = {
            "em": [user.email, *user.other_emails], "ph": [user.phone, *user.other_phones],
            "fn": [address.first_name], "ln": [address.last_name], "ge": [user.gender],
            "ct": [address.city], "st": [address.region], "zp": [address.postal_code], "country": [address.country],
            "external_id": [user.external_id, consented_user_id(event)],
        }  # fmt: skip
        country = address.country or self.settings.default_phone_country
        out: dict[str, Any] = {}
        for key, values in raw.items():
            hashes = dedup(snapchat_hash(key, v, default_country=country) for v in values if v)
            if hashes:
                out[key] = hashes
        for key, value in (("client_ip_address", event.client.ip), ("client_user_agent", event.client.user_agent),
                           ("sc_click_id", event.click_ids.sc_click_id), ("sc_cookie1", event.click_ids.sc_cookie1)):
            if value:
                out[key] = value  # never hashed
        return out

    @staticmethod
    def _custom_data(event: Event) -> dict[str, Any]:
        ecommerce = event.ecommerce
        data: dict[str, Any] = {}
        if ecommerce.currency:
            data["currency"] = ecommerce.currency.upper()
        if ecommerce.value is not None:
            data["value"] = ecommerce.value
        contents = []
        for item in ecommerce.items:
            row: dict[str, Any] = {}
            for key, value in (("id", item.item_id), ("quantity", item.quantity), ("item_price", item.price),
                               ("brand", item.item_brand)):  # fmt: skip
                if value is not None:
                    row[key] = int(value) if key == "quantity" and float(value).is_integer() else value
            if row:
                contents.append(row)
        if contents:
            data["contents"] = contents
            data["content_ids"] = [c["id"] for c in contents if "id" in c]
            data["num_items"] = int(sum(item.quantity or 1 for item in ecommerce.items))
        if ecommerce.transaction_id:
            data["order_id"] = ecommerce.transaction_id
        search = event.params.get("search_term")
        if isinstance(search, str) and search:
            data["search_string"] = search
        return data

    # ------------------------------------------------------------------ deliver side
    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        token = self.required_secret("access_token", "generate a Conversions API token in Snap Ads Manager > Events Manager")
        s = self.settings
        path = "/events/validate" if s.validate_only else "/events"
        url = f"{s.endpoint.rstrip('/')}/v3/{s.pixel_id}{path}?{urlencode({'access_token': token})}"
        masked = mask_url(url, ("access_token",))
        batch = Batch()
        for part in chunks(tasks, self.max_batch):
            batch.requests.append(VendorRequest("POST", url, [t.event_uid for t in part],
                                                json={"data": [t.payload for t in part]}, masked_url=masked))  # fmt: skip
        return batch

    def classify(self, request: VendorRequest, response: httpx.Response | None, error: Exception | None) -> Result:
        if error is not None or response is None:
            return classify_http(response, error)
        body = response_json(response)
        status = response.status_code
        snap_status = body.get("status") if isinstance(body, dict) else None
        if 200 <= status < 300 and snap_status != "INVALID":
            return Result(Verdict.OK, "ok")
        reason_text = body.get("reason") if isinstance(body, dict) else None
        detail = reason_text[:120] if isinstance(reason_text, str) else ""  # Snap's reason names the field, not its value [unverified]
        invalid = "snapchat:invalid" if snap_status == "INVALID" else None
        if 200 <= status < 300:  # answered 200 with status INVALID
            return Result(Verdict.PERMANENT, "snapchat:invalid", "Snapchat refused the events" + (f" ({detail})" if detail else ""))
        return vendor_refusal("snapchat", response, SNAPCHAT_STATUS, reason=invalid, detail=detail)
