"""Reddit Conversions API v3: canonical events -> POST /api/v3/pixels/{pixel_id}/conversion_events.

    POST {endpoint}/api/v3/pixels/{pixel_id}/conversion_events        Authorization: Bearer <token>
    {"data": {"test_id"?: "...", "events": [{"event_at": <ms>, "action_source": "WEBSITE",
              "type": {"tracking_type": "PURCHASE"}, "click_id", "metadata": {...}, "user": {...}}]}}

Which API: Reddit's v2.0 endpoint (`/api/v2.0/conversions/events/{ad_account_id}`, event_at ISO 8601,
event_metadata.value_decimal, test_mode) is deprecated in favour of v3 ([secondary] RudderStack's Reddit
destination docs: "API v2 is deprecated but not yet sunset", and its v3 migration guide); Reddit's listed sGTM
partner template moved to v3 ([code] stape-io/reddit-tag template.js @ca26b67, "Retrocompatibility v2 -> v3").
We build v3, as that template sends it:
- a Conversion Access Token from Events Manager as a Bearer token (does not expire) [secondary: Tealium docs]
- event_at in Unix **milliseconds**; action_source WEBSITE; type.tracking_type from mappings/reddit.toml,
  or CUSTOM + custom_event_name
- click_id is the `rdt_cid` landing parameter, kept in `_rdt_cid` (30 days in the template; the older
  `rdt_cid` cookie name is deprecated); user.uuid is the Reddit Pixel's `_rdt_uuid` cookie, "<ms>.<uuid>",
  of which the uuid part is sent
- metadata.conversion_id is the dedup key shared with the pixel's conversionId (our event_id); value is a
  number, currency ISO 4217, item_count, products [{id, name, category}]
- user.email / phone_number / external_id: SHA-256 (tagpipe.hashing.reddit); ip_address, user_agent in clear;
  data_processing_options {"modes": ["LDU"]} for Limited Data Use
- data.test_id sends the events to Events Manager's testing tool (our test_event_code)
- Batch: at most 1,000 events per request ([unverified]: Tealium's connector batches 1,000).
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import Field

from tagpipe.consent import consented_user_id
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
    group_by_request,
    response_json,
    split_request,
    vendor_refusal,
)
from tagpipe.errors import InvalidInput
from tagpipe.hashing.reddit import reddit_hash
from tagpipe.models import DeliveryTask, Event

# --------------------------------------------------------------------------- error table (data)
# HTTP status -> verdict. [unverified] Reddit's v3 reference was not readable this session; these are the Ads
# API's general statuses as Reddit's partner integrations treat them (rudder-transformer
# src/cdk/v2/destinations/reddit: 401 refreshes the token, 429 retried, 5xx retried, other 4xx aborted).
REDDIT_STATUS: dict[int, tuple[Verdict, str]] = {
    400: (Verdict.PERMANENT, "Reddit refused the events"),
    401: (Verdict.PERMANENT, "Reddit refused the access token"),
    403: (Verdict.PERMANENT, "the token may not send events for this pixel"),
    404: (Verdict.PERMANENT, "no such pixel"),
    422: (Verdict.PERMANENT, "Reddit refused the events"),
    429: (Verdict.THROTTLE, "rate limited"),
}



class RedditSettings(HttpDestinationSettings):
    pixel_id: str = Field(pattern=r"^[A-Za-z0-9_]+$", description="the pixel id from Events Manager (a2_... / t2_...)")
    access_token_env: str = "REDDIT_ACCESS_TOKEN"
    endpoint: str = "https://ads-api.reddit.com"
    test_event_code: str | None = Field(None, description="data.test_id: the events show in the Event Testing tool")
    event_map: dict[str, str] = Field(default_factory=dict)  # over mappings/reddit.toml
    send_unmapped: bool = Field(False, description="send names absent from the map as CUSTOM events")


class RedditConversions(Destination):
    type = "reddit"
    test_mode = "test_event_code"
    max_batch = 1000
    Settings = RedditSettings
    settings: RedditSettings

    # ------------------------------------------------------------------ transform side
    def prepare(self, event: Event) -> Prepared | None:
        tracking_type = self.mapped_name(event, unmapped="CUSTOM")
        if tracking_type is None:
            return None
        event_type: dict[str, str] = {"tracking_type": tracking_type}
        if tracking_type == "CUSTOM":
            event_type["custom_event_name"] = event.name
        user, identifiers = self._user(event)
        click_id = event.click_ids.rdt_cid
        if click_id:
            identifiers.insert(0, "rdt_cid")
        if not click_id and not user.get("uuid") and not identifiers:
            raise InvalidInput("reddit:no_identifier",
                               "Reddit needs a click id, the pixel's uuid, an email, phone, external id or IP + user agent")  # fmt: skip
        payload: dict[str, Any] = {
            "event_at": int(round(event.timestamp * 1000)),
            "action_source": "WEBSITE" if event.action_source == "website" else event.action_source.upper(),
            "type": event_type,
        }
        if click_id:
            payload["click_id"] = click_id
        payload["metadata"] = self._metadata(event)
        payload["user"] = user
        test_code = event.test_event_code or self.settings.test_event_code
        if test_code:
            payload[REQUEST_KEY] = {"test_id": test_code}
        return Prepared(event_type.get("custom_event_name", tracking_type), payload, identifiers)

    def _user(self, event: Event) -> tuple[dict[str, Any], list[str]]:
        country = event.user_data.address.country or self.settings.default_phone_country
        user: dict[str, Any] = {}
        identifiers: list[str] = []
        for key, kind, value, tag in (
            ("email", "email", event.user_data.email, "em"),
            ("phone_number", "phone", event.user_data.phone, "ph"),
            ("external_id", "external_id", event.user_data.external_id or consented_user_id(event), "external_id"),
        ):
            if hashed := reddit_hash(kind, value, default_country=country):
                user[key] = hashed
                identifiers.append(tag)
        if uuid := _pixel_uuid(event.click_ids.rdt_uuid):
            user["uuid"] = uuid
            identifiers.append("rdt_uuid")
        if event.client.ip:
            user["ip_address"] = event.client.ip
        if event.client.user_agent:
            user["user_agent"] = event.client.user_agent
        if event.client.ip and event.client.user_agent:
            identifiers.append("ip_ua")
        if screen := _screen(event.client.screen_resolution):
            user["screen_dimensions"] = screen
        if event.consent.limited_data_use:
            user["data_processing_options"] = {"modes": ["LDU"]}
        return user, identifiers

    @staticmethod
    def _metadata(event: Event) -> dict[str, Any]:
        ecommerce = event.ecommerce
        data: dict[str, Any] = {"conversion_id": event.event_id}
        if ecommerce.currency:
            data["currency"] = ecommerce.currency.upper()
        if ecommerce.value is not None:
            data["value"] = ecommerce.value
        if ecommerce.items:
            data["item_count"] = int(sum(item.quantity or 1 for item in ecommerce.items))
            products = []
            for item in ecommerce.items:
                row = {k: v for k, v in (("id", item.item_id), ("name", item.item_name),
                                         ("category", item.item_category)) if v}  # fmt: skip
                if row:
                    products.append(row)
            if products:
                data["products"] = products
        return data

    # ------------------------------------------------------------------ deliver side
    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        token = self.required_secret("access_token", "generate a Conversion Access Token in Reddit Events Manager")
        s = self.settings
        url = f"{s.endpoint.rstrip('/')}/api/v3/pixels/{s.pixel_id}/conversion_events"
        headers = {"Authorization": f"Bearer {token}"}
        batch = Batch()
        for fields, group in group_by_request(tasks):
            for part in chunks(group, self.max_batch):
                data: dict[str, Any] = {}
                if fields.get("test_id"):
                    data["test_id"] = fields["test_id"]
                data["events"] = [split_request(t.payload)[1] for t in part]
                batch.requests.append(VendorRequest("POST", url, [t.event_uid for t in part], headers=headers,
                                                    json={"data": data}))  # fmt: skip
        return batch

    def classify(self, request: VendorRequest, response: httpx.Response | None, error: Exception | None) -> Result:
        if error is not None or response is None:
            return classify_http(response, error)
        if 200 <= response.status_code < 300:
            return Result(Verdict.OK, "ok")
        body = response_json(response)
        envelope = body.get("error") if isinstance(body, dict) else None
        field = envelope.get("field") if isinstance(envelope, dict) else None
        # the field's name only: messages may echo values
        return vendor_refusal("reddit", response, REDDIT_STATUS, detail=f"field {field[:60]}" if isinstance(field, str) else "")


def _pixel_uuid(cookie: str | None) -> str | None:
    """_rdt_uuid = "<ms>.<uuid>" -> the uuid ([code] stape-io/reddit-tag getUUIDAndTimestamp); a bare uuid as is."""
    if not cookie:
        return None
    stamp, dot, uuid = cookie.partition(".")
    if not dot:
        return cookie
    return uuid if stamp.isdigit() and uuid else None


def _screen(resolution: str | None) -> dict[str, int] | None:
    if not resolution:
        return None
    width, x, height = resolution.partition("x")
    if x and width.isdigit() and height.isdigit():
        return {"width": int(width), "height": int(height)}
    return None
