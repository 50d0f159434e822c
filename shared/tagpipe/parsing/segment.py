"""The Segment spec (HTTP Tracking API) as a collect source: any Segment or RudderStack SDK sends to tagpipe by
changing its host (docs/segment.md).

Routes (collect, under paths.segment_prefix, "/v1" as at api.segment.io): track, page, identify, screen, group,
alias and batch, and the one-letter forms analytics.js (@segment/analytics-next) posts to: t, p, i, s, g, a, b.

Segment's documents and SDKs, read for this module:
- [http] HTTP API source (segmentio/segment-docs src/connections/sources/catalog/libraries/server/http-api/index.md):
  write key auth as HTTP Basic with the write key as the user name and an empty password, or `writeKey` in the
  body; content type application/json; 32 KB per call, 500 KB per batch request and 32 KB per message in it, 2500
  messages per batch; every message needs a userId or an anonymousId; a track needs `event`; 200 for everything
  but large payloads and bad JSON (400); `messageId` is the dedup key, fewer than 100 characters; the batch's
  own `context` and `integrations` are merged into each message's; `context.direct` marks a call from the user's
  device, whose request IP is the user's.
- [common] Spec: Common Fields (src/connections/spec/common.md): messageId, anonymousId, userId, context.{ip,
  userAgent, locale, page, campaign, screen, traits, app, library}; every timestamp ISO 8601; `timestamp` "calculated
  by Segment to correct client-device clock skew": receivedAt - (sentAt - originalTimestamp), where
  originalTimestamp is the client's time of the call (the `timestamp` a library sends) and sentAt the client's
  time of sending. "IP Address is not collected by our libraries, but instead filled in by our servers ... for
  client side events only".
- [ecom] Spec: V2 Ecommerce Events (src/connections/spec/ecommerce/v2.md): Order Completed {order_id, affiliation,
  subtotal, total, revenue, shipping, tax, discount, coupon, currency, products[] {product_id, sku, category, name,
  brand, variant, price, quantity, coupon, position, url, image_url}}; Product Viewed / Added / Removed / Clicked
  carry one product's fields in the properties themselves.
- [ga4] Segment's own GA4 destination (segmentio/action-destinations packages/destination-actions/src/destinations/
  google-analytics-4): which Segment event each GA4 event subscribes to by default (purchase/index.ts:
  'type = "track" and event = "Order Completed"', ...); products[] -> items as ga4-properties.ts
  items_multi_products maps them (product_id -> item_id, name -> item_name, brand -> item_brand, category ->
  item_category, variant -> item_variant, position -> index, price, quantity, coupon, affiliation); purchase and
  refund value from properties.total, the others from properties.value.
- [capi] Segment's Facebook Conversions API destination (same repository, facebook-conversions-api/
  fb-capi-user-data.ts): user data from context.traits (email, phone, birthday, firstName, lastName,
  address.{city, state, postalCode}), external_id userId else anonymousId, client_ip_address context.ip,
  client_user_agent context.userAgent, fbc / fbp from properties.fbc / properties.fbp.
- The SDKs themselves (the tests drive them): @segment/analytics-node posts /v1/batch {batch, writeKey, sentAt}
  with Basic auth and retries 5xx with the same messageIds; @rudderstack/rudder-sdk-node posts /v1/batch gzipped
  (Content-Encoding: gzip) with Basic auth, each message with originalTimestamp and sentAt; segment-analytics-python
  posts /v1/batch {batch, sentAt, writeKey}; @segment/analytics-next posts /v1/t, /v1/p, /v1/i ... from the page as
  text/plain with `writeKey` and `sentAt` in the body and Basic auth.

event_id is the message's messageId, so an SDK's retry of a batch (same messageIds, a new sentAt) is the same
events and deliver sends each once. Properties that are objects or lists (other than products) are not forwarded;
neither are traits beyond the customer-information ones, so a trait such as `name` never reaches a vendor.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import zlib
from datetime import UTC, datetime
from typing import Any

from tagpipe.errors import InvalidInput
from tagpipe.models import Event, RawHit

from ._common import (
    MAX_PARAMS_PER_EVENT,
    MS_THRESHOLD,
    STATUS_TOO_LARGE,
    HitContext,
    check_ip,
    check_size,
    check_timestamp,
    click_ids,
    ensure_text,
    event_base,
    fail,
    finite_float,
)
from ._orders import check_items, currency, drop_empty, mapping, money, objects, text, text_id

STATUS_UNAUTHORIZED = 401
MAX_MESSAGE_BYTES = 32 * 1024  # [http] "a maximum of 32KB per normal API request" and per message of a batch
MAX_BATCH_BYTES = 500 * 1024  # [http] "The batch API endpoint accepts a maximum of 500KB per request"
MAX_BATCH_MESSAGES = 2500  # [http] "Each batch request can only have up to 2500 events"
MAX_MESSAGE_ID_CHARS = 100  # [http] "unique messageId values with fewer than 100 characters"

# the last path segment -> the message type it carries (None: a batch, each message names its own type)
ROUTES: dict[str, str | None] = {
    "track": "track", "page": "page", "identify": "identify", "screen": "screen", "group": "group",
    "alias": "alias", "batch": None,
    # analytics.js posts to the type's first letter (analytics-next plugins/segmentio: ctx.event.type.charAt(0);
    # batched-dispatcher: "/b")
    "t": "track", "p": "page", "i": "identify", "s": "screen", "g": "group", "a": "alias", "b": None,
}  # fmt: skip
TYPES = frozenset(t for t in ROUTES.values() if t)

# Segment's V2 Ecommerce (and B2B) event names -> the GA4 event names every destination maps from, as Segment's GA4
# destination subscribes to them [ga4]. Read there: purchase, refund, add_to_cart, begin_checkout, view_item,
# search, sign_up, login; the others are named by its actions (removeFromCart, viewItemList, selectItem, viewCart,
# addPaymentInfo, viewPromotion, selectPromotion, addToWishlist) [unverified: their defaultSubscription not read].
EVENT_NAMES = {
    "Order Completed": "purchase",
    "Order Refunded": "refund",
    "Product Added": "add_to_cart",
    "Product Removed": "remove_from_cart",
    "Checkout Started": "begin_checkout",
    "Product Viewed": "view_item",
    "Product List Viewed": "view_item_list",
    "Product Clicked": "select_item",
    "Cart Viewed": "view_cart",
    "Payment Info Entered": "add_payment_info",
    "Promotion Viewed": "view_promotion",
    "Promotion Clicked": "select_promotion",
    "Products Searched": "search",
    "Product Added to Wishlist": "add_to_wishlist",
    "Signed Up": "sign_up",
    "Signed In": "login",
}
# the other message types' event names (GA4's for a page and an app screen; the rest keep Segment's word)
TYPE_NAMES = {"page": "page_view", "screen": "screen_view", "identify": "identify", "group": "group", "alias": "alias"}
# events whose properties are one product's fields [ecom] (the GA4 destination's items_single_products)
SINGLE_PRODUCT = frozenset({"view_item", "add_to_cart", "remove_from_cart", "select_item", "add_to_wishlist"})
# value: purchase and refund from total [ga4 purchase/refund], the others from value; then the fallbacks
VALUE_KEYS = {"purchase": ("total", "revenue", "value"), "refund": ("total", "revenue", "value")}
OTHER_VALUE_KEYS = ("value", "total", "revenue")

# properties that become ecommerce fields or click ids, never params
ORDER_KEYS = frozenset({"order_id", "total", "revenue", "value", "currency", "tax", "shipping", "coupon", "products",
                        "fbc", "fbp"})  # fmt: skip
PRODUCT_FIELDS = {"product_id": "item_id", "name": "item_name", "brand": "item_brand", "category": "item_category",
                  "variant": "item_variant", "coupon": "coupon", "affiliation": "affiliation"}  # fmt: skip
PRODUCT_KEYS = frozenset({*PRODUCT_FIELDS, "sku", "price", "quantity", "position"})
CAMPAIGN_PARAMS = {"name": "campaign_name", "source": "campaign_source", "medium": "campaign_medium",
                   "term": "campaign_term", "content": "campaign_content"}  # fmt: skip
# context.library.name of the browser library (analytics.js / @segment/analytics-next): its request is the user's
BROWSER_LIBRARIES = frozenset({"analytics.js", "analytics-next"})

# an ISO 8601 date-time as Segment takes it, also without zero-padding ("2015-2-02T00:30:08.276Z" is in [http]'s
# own batch example)
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(\.\d+)?)?)?"
                  r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?")  # fmt: skip


# --------------------------------------------------------------------------- collect: body and write key


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent before its Content-Encoding: RudderStack's node SDK gzips every batch by default. At most
    `limit` bytes are inflated, so a small bomb cannot fill memory."""
    if not encoding or encoding.strip().lower() in ("identity", ""):
        return body
    if encoding.strip().lower() != "gzip":
        raise fail("invalid_json", f"Content-Encoding {encoding.strip()[:20]!r} is not supported; send gzip or none",
                   415)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise fail("invalid_json", "the body is not valid gzip (Content-Encoding: gzip)") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise InvalidInput("body_too_large", f"the inflated body exceeds {limit} bytes", STATUS_TOO_LARGE)
    if not inflater.eof:
        raise fail("invalid_json", "the gzip body is cut off (Content-Encoding: gzip)")
    return out


def authorize(headers: dict[str, str], body: str, write_keys: list[str], keys_env: str) -> str:
    """Check the write key [http] and return the body to queue, without any `writeKey` in it (a credential is
    never queued or stored). The key is the Basic auth user name, else the body's `writeKey`. Raises 401."""
    if not write_keys:
        raise InvalidInput("unauthorized", f"Segment calls are refused: the server has no write keys in {keys_env}; "
                           "set it to the write keys your sources use (comma-separated)", STATUS_UNAUTHORIZED)
    offered = _basic_user(headers.get("authorization"))
    data: Any = None
    if "writeKey" in body:
        data = _json(body)
        if offered is None and isinstance(data, dict):
            offered = data.get("writeKey") if isinstance(data.get("writeKey"), str) else None
    if not offered:
        raise InvalidInput("unauthorized", "the call carries no write key: send it as the Basic auth user name "
                           "(Authorization: Basic base64(<write key>:)) or as writeKey in the body", STATUS_UNAUTHORIZED)
    if not any(hmac.compare_digest(offered.encode(), key.encode()) for key in write_keys):
        raise InvalidInput("unauthorized", "the write key is not one of the server's (check the SDK's writeKey "
                           f"and {keys_env})", STATUS_UNAUTHORIZED)
    if data is None:
        return body
    return json.dumps(_without_write_key(data), ensure_ascii=False, separators=(",", ":"))


def _basic_user(authorization: str | None) -> str | None:
    if not authorization or not authorization[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    # [http] "encoding the write key without a colon might work due to backward compatibility"
    return decoded.partition(":")[0] or None


def _without_write_key(data: Any) -> Any:
    if isinstance(data, dict):
        data.pop("writeKey", None)
        if isinstance(data.get("batch"), list):
            for message in data["batch"]:
                if isinstance(message, dict):
                    message.pop("writeKey", None)
    return data


def _json(body: str) -> Any:
    try:
        return json.loads(body, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise fail("invalid_json", f"the body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (ValueError, RecursionError):
        raise fail("invalid_json", "the body is not valid JSON (NaN/Infinity, a number too long, or nesting too "
                   "deep)") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# --------------------------------------------------------------------------- parse


def parse(raw: RawHit, ctx: HitContext, now: float) -> list[Event]:
    messages, sent_at = _messages(raw)
    return [_event(raw, ctx, i, message, path, sent_at, now) for i, (path, message) in enumerate(messages)]


def _messages(raw: RawHit) -> tuple[list[tuple[str, dict[str, Any]]], float | None]:
    """(path, message) of every message of the call, each with the batch's context merged in, and the batch's
    sentAt."""
    ensure_text("body", raw.body)
    kind = ROUTES.get(raw.path.rstrip("/").rpartition("/")[2], "batch")
    if not raw.body.strip():
        raise fail("missing_events", "the body is empty; send a Segment message (or {\"batch\": [...]})")
    if kind is not None and len(raw.body) > MAX_MESSAGE_BYTES // 4 and len(raw.body.encode()) > MAX_MESSAGE_BYTES:
        raise fail("body_too_large", f"a {kind} call is larger than {MAX_MESSAGE_BYTES // 1024} KB (Segment's "
                   "limit); send big payloads through /batch", STATUS_TOO_LARGE)
    data = _json(raw.body)
    if not isinstance(data, dict):
        raise fail("invalid_json", "the body must be a JSON object (a Segment message, or {\"batch\": [...]})")
    sent_at = _time(data.get("sentAt"), "sentAt")
    if kind is not None:
        return [("", {**data, "type": kind})], sent_at
    batch = data.get("batch")
    if not isinstance(batch, list):
        raise fail("missing_field" if batch is None else "invalid_field",
                   "batch must be a list of Segment messages, each with its type")
    if not batch:
        raise fail("missing_events", "the batch is empty")
    if len(batch) > MAX_BATCH_MESSAGES:
        raise fail("too_many_events", f"the batch has {len(batch)} messages; at most {MAX_BATCH_MESSAGES}",
                   STATUS_TOO_LARGE)
    shared_context = mapping(data.get("context"), "context")
    big = len(raw.body) > MAX_MESSAGE_BYTES // 4
    out = []
    for i, message in enumerate(batch):
        path = f"batch[{i}]."
        if not isinstance(message, dict):
            raise fail("invalid_field", f"batch[{i}] must be a JSON object")
        if big and len(json.dumps(message, ensure_ascii=False).encode()) > MAX_MESSAGE_BYTES:
            raise fail("value_too_large", f"batch[{i}] is larger than {MAX_MESSAGE_BYTES // 1024} KB (Segment's "
                       "limit per message)", STATUS_TOO_LARGE)
        if message.get("type") not in TYPES:
            raise fail("missing_field" if message.get("type") is None else "invalid_field",
                       f"{path}type must be one of {', '.join(sorted(TYPES))}")
        if shared_context:
            message = {**message, "context": {**shared_context, **mapping(message.get("context"), path + "context")}}
        out.append((path, message))
    return out, sent_at


def _event(raw: RawHit, ctx: HitContext, index: int, message: dict[str, Any], path: str, batch_sent_at: float | None,
           now: float) -> Event:
    kind = message["type"]
    context = mapping(message.get("context"), path + "context")
    properties = mapping(message.get("properties"), path + "properties")
    user_id = text_id(message.get("userId"), path + "userId")
    anonymous_id = text_id(message.get("anonymousId"), path + "anonymousId")
    if not (user_id or anonymous_id):  # [http] "each payload has a userId and/or anonymousId"
        raise fail("missing_client_id", f"{path[:-1] or 'the message'} needs a userId or an anonymousId (no_user_anon_id)")
    message_id = text_id(message.get("messageId"), path + "messageId")
    if message_id and len(message_id) > MAX_MESSAGE_ID_CHARS:
        raise fail("invalid_field", f"{path}messageId must be fewer than {MAX_MESSAGE_ID_CHARS} characters")

    name = _name(kind, message, path)
    timestamp = _timestamp(raw, message, path, batch_sent_at, now)
    page = _page(kind, properties, mapping(context.get("page"), path + "context.page"), path)
    from_device = _from_device(context)
    ip = check_ip(path + "context.ip", context["ip"]) if isinstance(context.get("ip"), str) and context["ip"] else None
    user_agent = text(context.get("userAgent"), path + "context.userAgent")

    ecommerce, params = _ecommerce(name, properties, path)
    params.update(_extra_params(kind, message, context, path))
    traits = {**mapping(context.get("traits"), path + "context.traits")}
    if kind == "identify":
        traits.update(mapping(message.get("traits"), path + "traits"))
    explicit = drop_empty({key: text(properties.get(key), f"{path}properties.{key}") for key in ("fbc", "fbp")})

    event = event_base(raw, ctx, index, message_id, name, timestamp)
    if not from_device:  # a server library's request headers are its own (Node's fetch even adds Sec-Fetch-Mode)
        event["headers"] = {}
    event.update(
        action_source="app" if isinstance(context.get("app"), dict) and not page.get("url") else "website",
        page=page,
        client={
            "client_id": anonymous_id or ctx.ga_client_id,
            "user_id": user_id,
            "ip": ip or (ctx.ip if from_device else None),
            "user_agent": user_agent or (ctx.user_agent if from_device else None),
            "language": text(context.get("locale"), path + "context.locale"),
            "screen_resolution": _screen(mapping(context.get("screen"), path + "context.screen")),
            "geo": ctx.geo if from_device else {},
        },
        user_data=_user_data(traits, user_id or anonymous_id, path),
        click_ids=click_ids(ctx, page.get("url"), explicit),
        ecommerce=ecommerce,
        params=params,
    )
    return Event.model_validate(event)


def _name(kind: str, message: dict[str, Any], path: str) -> str:
    if kind != "track":
        return TYPE_NAMES[kind]
    event = text(message.get("event"), path + "event")
    if not event:  # [http] "All Track events sent to Segment must have an event field"
        raise fail("missing_event_name", f"{path}event is required for a track call")
    return EVENT_NAMES.get(event, check_size(path + "event", event))


def _time(value: Any, path: str) -> float | None:
    """An ISO 8601 time [common] (numbers, as unix seconds or ms, are taken too) on the sender's clock, which may
    be off by any amount: range-checked only once corrected (_timestamp). None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise fail("invalid_timestamp", f"{path} must be an ISO 8601 date-time string")
    if not isinstance(value, str):
        stamp = finite_float(value)
        if stamp is None:
            raise fail("invalid_timestamp", f"{path} must be a finite number")
        return stamp / 1000.0 if stamp > MS_THRESHOLD else stamp
    match = _ISO.fullmatch(value.strip())
    if match is None:
        raise fail("invalid_timestamp", f"{path} is not an ISO 8601 date-time (e.g. 2025-05-01T12:00:00.000Z)")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        stamp = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                         tzinfo=UTC).timestamp() + float(fraction or 0)
    except ValueError:
        raise fail("invalid_timestamp", f"{path} is not a date-time (ISO 8601, e.g. 2025-05-01T12:00:00.000Z)") from None
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "+" else 1
        digits = zone[1:].replace(":", "")
        stamp += sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    return stamp


def _timestamp(raw: RawHit, message: dict[str, Any], path: str, batch_sent_at: float | None, now: float) -> float:
    """[common] timestamp = receivedAt - (sentAt - originalTimestamp): the client's clock corrected by how far its
    sentAt is from our receivedAt. originalTimestamp is the message's (RudderStack) or its `timestamp` (what
    Segment's libraries send, renamed originalTimestamp on arrival); a message without sentAt keeps its own time
    (an import of historical data); one without any time happened when it arrived."""
    key = "originalTimestamp" if message.get("originalTimestamp") not in (None, "") else "timestamp"
    original = _time(message.get(key), path + key)
    sent_at = _time(message.get("sentAt"), path + "sentAt") if "sentAt" in message else batch_sent_at
    if original is None:
        return raw.received_at
    if sent_at is None:
        return check_timestamp(path + key, original, now)
    return check_timestamp(path + key, raw.received_at - (sent_at - original), now)


def _from_device(context: dict[str, Any]) -> bool:
    """Whether the request itself came from the user's device, so its IP, user agent and geo are the user's
    ([http] context.direct; [common] the IP is filled in "for client side events only")."""
    library = context.get("library")
    name = library.get("name") if isinstance(library, dict) else None
    return context.get("direct") is True or name in BROWSER_LIBRARIES


def _page(kind: str, properties: dict[str, Any], context_page: dict[str, Any], path: str) -> dict[str, Any]:
    """context.page [common]; a page call's own properties (url, referrer, title) first."""
    own = properties if kind == "page" else {}
    where = {key: (f"{path}properties.{key}" if key in own else f"{path}context.page.{key}")
             for key in ("url", "referrer", "title")}  # fmt: skip
    return {key: text(own.get(key, context_page.get(key)), where[key]) for key in where}


def _screen(screen: dict[str, Any]) -> str | None:
    width, height = screen.get("width"), screen.get("height")
    if isinstance(width, int) and isinstance(height, int) and not isinstance(width, bool):
        return f"{width}x{height}"
    return None


def _ecommerce(name: str, properties: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ecommerce fields [ecom] -> [ga4] and the remaining scalar properties as params."""
    where = path + "properties."
    value = next((money(properties[key], where + key) for key in VALUE_KEYS.get(name, OTHER_VALUE_KEYS)
                  if properties.get(key) not in (None, "")), None)  # fmt: skip
    ecommerce = drop_empty({
        "value": value,
        "currency": currency(properties.get("currency"), where + "currency"),
        "transaction_id": text_id(properties.get("order_id"), where + "order_id"),
        "tax": money(properties.get("tax"), where + "tax"),
        "shipping": money(properties.get("shipping"), where + "shipping"),
        "coupon": text(properties.get("coupon"), where + "coupon"),
    })
    consumed = set(ORDER_KEYS)
    if "products" in properties:
        products = objects(properties["products"], where + "products")
        check_items(products, where + "products")
        ecommerce["items"] = [_item(product, f"{where}products[{i}].") for i, product in enumerate(products)]
    elif name in SINGLE_PRODUCT and any(properties.get(key) not in (None, "") for key in ("product_id", "sku", "name")):
        ecommerce["items"] = [_item(properties, where)]
        consumed |= PRODUCT_KEYS
    params = {}
    for key, item in properties.items():
        if key in consumed or not (item is None or isinstance(item, (str, int, float, bool))):
            continue  # [ecom] fields above; objects and lists have no place in an event's params
        params[check_size(where + key, key)] = check_size(where + key, item) if isinstance(item, str) else item
    if name == "search" and "query" in params:  # [ga4] search: search_term from properties.query
        params["search_term"] = params.pop("query")
    if name == "sign_up" and "type" in params:  # [ga4] signUp: method from properties.type
        params["method"] = params.pop("type")
    if len(params) > MAX_PARAMS_PER_EVENT:
        raise fail("too_many_params", f"{where[:-1]} has {len(params)} keys; at most {MAX_PARAMS_PER_EVENT}",
                   STATUS_TOO_LARGE)
    return ecommerce, params


def _item(product: dict[str, Any], where: str) -> dict[str, Any]:
    """A Segment product [ecom] as a GA4 item [ga4 items_multi_products]; the sku is the id when there is no
    product_id, and any other scalar field (sku, url, image_url, ...) an item-scoped custom parameter."""
    item = drop_empty({field: text(product.get(key), where + key) for key, field in PRODUCT_FIELDS.items()})
    sku = text(product.get("sku"), where + "sku")
    if "item_id" not in item and sku:
        item["item_id"] = sku
    item.update(drop_empty({"price": money(product.get("price"), where + "price"),
                            "quantity": money(product.get("quantity"), where + "quantity")}))
    position = money(product.get("position"), where + "position")
    if position is not None and position.is_integer():
        item["index"] = int(position)
    custom = {key: value for key, value in product.items() if key not in PRODUCT_KEYS
              and isinstance(value, (str, int, float, bool)) and key not in ORDER_KEYS}  # fmt: skip
    if sku and item["item_id"] != sku:
        custom["sku"] = sku
    if custom:
        item["custom"] = {key: check_size(where + key, v) if isinstance(v, str) else v for key, v in custom.items()}
    return item


def _extra_params(kind: str, message: dict[str, Any], context: dict[str, Any], path: str) -> dict[str, Any]:
    """The page / screen name, group id and alias's previous id, and context.campaign as GA4's campaign params."""
    params: dict[str, Any] = {}
    if kind in ("page", "screen"):
        params[f"{kind}_name"] = text(message.get("name"), path + "name")
        params[f"{kind}_category"] = text(message.get("category"), path + "category")
    elif kind == "group":
        params["group_id"] = text_id(message.get("groupId"), path + "groupId")
    elif kind == "alias":
        params["previous_id"] = text_id(message.get("previousId"), path + "previousId")
    campaign = mapping(context.get("campaign"), path + "context.campaign")
    for key, param in CAMPAIGN_PARAMS.items():
        params[param] = text(campaign.get(key), f"{path}context.campaign.{key}")
    return drop_empty(params)


def _user_data(traits: dict[str, Any], external_id: str, path: str) -> dict[str, Any]:
    """The customer-information traits [capi] (Segment's reserved traits: email, phone, firstName, lastName,
    birthday, gender, address {street, city, state, postalCode, country}); external_id is the userId, else the
    anonymousId, as Segment's Conversions API destination sends it."""
    where = path + "traits."
    address = mapping(traits.get("address"), where + "address")
    return {
        "email": text(traits.get("email"), where + "email"),
        "phone": text(traits.get("phone"), where + "phone"),
        "gender": text(traits.get("gender"), where + "gender"),
        "date_of_birth": text(traits.get("birthday"), where + "birthday"),
        "external_id": external_id,
        "address": {
            "first_name": text(traits.get("firstName"), where + "firstName"),
            "last_name": text(traits.get("lastName"), where + "lastName"),
            "street": text(address.get("street"), where + "address.street"),
            "city": text(address.get("city"), where + "address.city"),
            "region": text(address.get("state"), where + "address.state"),
            "postal_code": text(address.get("postalCode"), where + "address.postalCode"),
            "country": text(address.get("country"), where + "address.country"),
        },
    }
