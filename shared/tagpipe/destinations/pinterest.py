"""Pinterest Conversions API (v5): canonical events -> POST /v5/ad_accounts/{ad_account_id}/events.

    POST {endpoint}/v5/ad_accounts/{ad_account_id}/events[?test=true]     Authorization: Bearer <token>
    {"data": [{"event_name", "action_source": "web", "event_time", "event_id", "event_source_url",
               "opt_out"?, "user_data": {...}, "custom_data": {...}}]}

Vendor facts, each [doc] Pinterest's generated API client (pinterest/pinterest-python-generated-api-client
docs/ConversionEventsApi.md, ConversionEventsData.md, ConversionEventsUserData.md, ConversionEventsCustomData.md,
ConversionApiResponse.md @1e4ee77) unless marked:
- Bearer conversion access token from Ads Manager; rate limit 5,000 calls per minute per ad account.
- `?test=true`: "The events will not be recorded but the API will still return the same response messages".
- event_time is Unix seconds; event_id "can be used for deduping between events ingested via both the
  conversion API and Pinterest tracking" (the Pinterest tag's event id must be the same id).
- user_data needs at least one of em, hashed_maids, or client_ip_address + client_user_agent; em ph ge db ln fn
  ct st zp country external_id are lists of SHA-256 (tagpipe.hashing.pinterest); click_id is the `_epik` cookie
  / `epik` URL parameter, sent as it came ([code] stape-io/pinterest-tag template.js @a226d70 addUserData).
- custom_data.value is a string ("Accepted as a string ... parsed into a double"); contents[].item_price too
  ([code] the template's fixValueTypes); num_items an int; order_id "to help us deduplicate".
- opt_out: "whether the user has opted out of tracking for web conversion events" (we set it for npa=1 /
  ad_personalization denied, like Meta's).
- The answer is 200 {num_events_received, num_events_processed, events: [{status, error_message,
  warning_message}]} in request order: per-event verdicts come from it.
- At most 1,000 events per request ([unverified]: VENDORS §5; Pinterest's page says "one or more").
"""

from __future__ import annotations

from typing import Any

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
    response_json,
    vendor_refusal,
)
from tagpipe.errors import InvalidInput
from tagpipe.hashing import dedup
from tagpipe.hashing.pinterest import pinterest_hash
from tagpipe.models import DeliveryTask, Event

# --------------------------------------------------------------------------- error table (data)
# HTTP status -> verdict. Pinterest's v5 error body is {"code": <int>, "message": <str>} ([doc] the generated
# client's Error.md); the per-status meanings below are the events_create responses of Pinterest's OpenAPI
# (400 invalid parameters, 401 not authenticated, 403 not authorised for the ad account, 422 invalid events,
# 429 rate limited, 5xx Pinterest error) [unverified: read in the api-evangelist mirror of the OpenAPI, not
# on developers.pinterest.com]. The numeric `code` is kept in the reason (pinterest:<code>), not interpreted.
PINTEREST_STATUS: dict[int, tuple[Verdict, str]] = {
    400: (Verdict.PERMANENT, "Pinterest refused the request's parameters"),
    401: (Verdict.PERMANENT, "Pinterest refused the access token"),
    403: (Verdict.PERMANENT, "the token may not send events for this ad account"),
    404: (Verdict.PERMANENT, "no such ad account"),
    422: (Verdict.PERMANENT, "Pinterest refused the events"),
    429: (Verdict.THROTTLE, "rate limited (5,000 calls per minute per ad account)"),
}



class PinterestSettings(HttpDestinationSettings):
    ad_account_id: str = Field(pattern=r"^\d+$", description="the ad account the conversions belong to")
    access_token_env: str = "PINTEREST_ACCESS_TOKEN"
    endpoint: str = "https://api.pinterest.com"
    validate_only: bool = Field(False, description="?test=true: Pinterest checks the events and records none")
    event_map: dict[str, str] = Field(default_factory=dict)  # GA4 name -> Pinterest name, over mappings/pinterest.toml
    send_unmapped: bool = Field(False, description='send names absent from the map as event_name "custom"')
    partner_name: str | None = None  # "Only send this field if Pinterest has worked directly with you"


class PinterestConversions(Destination):
    type = "pinterest"
    test_mode = "validate_only"
    max_batch = 1000
    Settings = PinterestSettings
    settings: PinterestSettings

    # ------------------------------------------------------------------ transform side
    def prepare(self, event: Event) -> Prepared | None:
        name = self.mapped_name(event, unmapped="custom")
        if name is None:
            return None
        user_data = self._user_data(event)
        if "em" not in user_data and not ("client_ip_address" in user_data and "client_user_agent" in user_data):
            raise InvalidInput("pinterest:no_identifier",
                               "Pinterest needs an email, or the client IP address and user agent together")  # fmt: skip
        identifiers = [key for key in ("em", "ph", "fn", "ln", "external_id") if key in user_data]
        if "click_id" in user_data:
            identifiers.append("epik")
        if "client_ip_address" in user_data and "client_user_agent" in user_data:
            identifiers.append("ip_ua")
        payload: dict[str, Any] = {
            "event_name": name,
            "action_source": "web" if event.action_source == "website" else event.action_source,
            "event_time": int(event.timestamp),
            "event_id": event.event_id,
        }
        if event.page.url:
            payload["event_source_url"] = event.page.url
        if event.consent.non_personalized_ads or event.consent.ad_personalization is False:
            payload["opt_out"] = True
        if self.settings.partner_name:
            payload["partner_name"] = self.settings.partner_name
        payload["user_data"] = user_data
        if custom := self._custom_data(event):
            payload["custom_data"] = custom
        return Prepared(name, payload, identifiers)

    def _user_data(self, event: Event) -> dict[str, Any]:
        user, address = event.user_data, event.user_data.address
        raw: dict[str, list[str | None]] = {
            "em": [user.email, *user.other_emails], "ph": [user.phone, *user.other_phones],
            "fn": [address.first_name], "ln": [address.last_name], "ge": [user.gender], "db": [user.date_of_birth],
            "ct": [address.city], "st": [address.region], "zp": [address.postal_code], "country": [address.country],
            "external_id": [user.external_id, consented_user_id(event)],
        }  # fmt: skip
        country = address.country or self.settings.default_phone_country
        out: dict[str, Any] = {}
        for key, values in raw.items():
            hashes = dedup(pinterest_hash(key, v, default_country=country) for v in values if v)
            if hashes:
                out[key] = hashes
        if event.client.ip:
            out["client_ip_address"] = event.client.ip
        if event.client.user_agent:
            out["client_user_agent"] = event.client.user_agent
        if event.click_ids.epik:
            out["click_id"] = event.click_ids.epik
        return out

    @staticmethod
    def _custom_data(event: Event) -> dict[str, Any]:
        ecommerce = event.ecommerce
        data: dict[str, Any] = {}
        if ecommerce.currency:
            data["currency"] = ecommerce.currency.upper()
        if ecommerce.value is not None:
            data["value"] = _decimal(ecommerce.value)
        ids = [item.item_id for item in ecommerce.items if item.item_id]
        if ids:
            data["content_ids"] = ids
        contents = []
        for item in ecommerce.items:
            row: dict[str, Any] = {}
            if item.item_id:
                row["id"] = item.item_id
            if item.price is not None:
                row["item_price"] = _decimal(item.price)
            if item.quantity is not None:
                row["quantity"] = int(item.quantity)
            if row:
                contents.append(row)
        if contents:
            data["contents"] = contents
            data["num_items"] = int(sum(item.quantity or 1 for item in ecommerce.items))
        if ecommerce.transaction_id:
            data["order_id"] = ecommerce.transaction_id
        search = event.params.get("search_term")
        if isinstance(search, str) and search:
            data["search_string"] = search
        return data

    # ------------------------------------------------------------------ deliver side
    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        token = self.required_secret("access_token", "generate a conversion access token in Pinterest Ads Manager > Conversions")
        s = self.settings
        url = f"{s.endpoint.rstrip('/')}/v5/ad_accounts/{s.ad_account_id}/events"
        if s.validate_only:
            url += "?test=true"
        headers = {"Authorization": f"Bearer {token}"}
        batch = Batch()
        for part in chunks(tasks, self.max_batch):
            body = {"data": [t.payload for t in part]}
            batch.requests.append(VendorRequest("POST", url, [t.event_uid for t in part], headers=headers, json=body))
        return batch

    def classify(self, request: VendorRequest, response: httpx.Response | None, error: Exception | None) -> Result:
        if error is not None or response is None:
            return classify_http(response, error)
        body = response_json(response)
        status = response.status_code
        if 200 <= status < 300:
            events = body.get("events") if isinstance(body, dict) else None
            per_event: dict[str, tuple[Verdict, str, str]] = {}
            if isinstance(events, list):
                for uid, answer in zip(request.event_uids, events, strict=False):
                    if isinstance(answer, dict) and answer.get("status") not in (None, "processed"):
                        # error_message names the field, never echoes its value ([unverified]); cut short anyway
                        message = str(answer.get("error_message") or "event not processed")[:120]
                        per_event[uid] = (Verdict.PERMANENT, "pinterest:event_failed", message)
            processed = body.get("num_events_processed") if isinstance(body, dict) else None
            detail = f"Pinterest processed {processed} of {len(request.event_uids)}" if per_event else ""
            return Result(Verdict.OK, "ok", detail, per_event=per_event)
        code = body.get("code") if isinstance(body, dict) else None
        if isinstance(code, int):
            return vendor_refusal("pinterest", response, PINTEREST_STATUS, reason=f"pinterest:{code}", detail=f"code {code}")
        return vendor_refusal("pinterest", response, PINTEREST_STATUS)


def _decimal(value: float) -> str:
    """A number as Pinterest's string: 72.05 -> '72.05', 30.0 -> '30'."""
    return f"{value:.10g}" if float(value) != int(value) else str(int(value))
