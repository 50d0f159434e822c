"""What the shop order webhooks (shopify.py, woocommerce.py) share: the signature, the body, money,
the order's event ids and the browser ids a storefront saved on the order.

The dedup rule (docs/webhooks.md): a purchase's event_id is the shop's order id, as a decimal string, the
same for every topic and every retry of one order, and the storefront's pixel sends the same; a refund's is
"refund-<refund id>". deliver's delivered-key check (event name + event_id) and the vendors' own dedup
(Meta: event_name + event_id within 48 h, ../shared/VENDORS.md §1.5) then keep one of each.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from tagpipe.errors import InvalidInput
from tagpipe.models import RawHit

from ._common import (
    CURRENCY_RULE,
    MAX_ITEMS_PER_EVENT,
    STATUS_TOO_LARGE,
    HitContext,
    best_client_ip,
    click_ids,
    currency_code,
    ensure_text,
    fail,
    parse_json_timestamp,
    parse_number,
)

STATUS_UNAUTHORIZED = 401

# Browser cookies a storefront snippet copies onto the order (Shopify cart attributes -> note_attributes,
# WooCommerce order meta -> meta_data; docs/webhooks.md): read as if the browser had sent them, so fbp/fbc,
# the GA client id and the click ids reach the purchase as they do for a browser hit.
SAVED_COOKIES = frozenset({"_fbp", "_fbc", "_ga", "_ttp", "ttclid", "_gcl_aw"})
WEBHOOK_HEADER_PREFIXES = ("x-shopify-", "x-wc-webhook-")


def check_signature(header: str, given: str | None, body: bytes, secret: str, secret_env: str) -> None:
    """base64(HMAC-SHA256(secret, raw body)) against the header, compared in constant time, as both shops
    document it (Shopify: "Verify webhooks", https://shopify.dev/docs/apps/build/webhooks/subscribe/https
    #step-5-verify-the-webhook; WooCommerce: WC_Webhook::generate_signature, base64_encode(hash_hmac('sha256',
    $payload, $secret, true)), plugins/woocommerce/includes/class-wc-webhook.php). Raises 401 unauthorized;
    the message names the header, never the body or the secret."""
    if not secret:
        raise InvalidInput("unauthorized", f"webhooks are refused: the server has no secret in {secret_env}; "
                           "set it to the shop's webhook secret", STATUS_UNAUTHORIZED)
    if not given:
        raise InvalidInput("unauthorized", f"the request has no {header} header", STATUS_UNAUTHORIZED)
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    if not hmac.compare_digest(given.strip().encode("latin-1", "replace"), expected):
        raise InvalidInput("unauthorized", f"{header} does not match the body (base64 HMAC-SHA256 of the raw "
                           "body with the webhook secret)", STATUS_UNAUTHORIZED)


def load_object(raw: RawHit, what: str) -> dict[str, Any]:
    """The webhook's JSON object, or invalid_json / missing_events naming the problem, never a value."""
    ensure_text("body", raw.body)
    if not raw.body.strip():
        raise fail("missing_events", f"the body is empty; a {what} webhook carries a JSON object")
    try:
        data = json.loads(raw.body, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise fail("invalid_json", f"the body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (ValueError, RecursionError):
        raise fail("invalid_json", "the body is not valid JSON (NaN/Infinity, a number too long, or nesting "
                   "too deep)") from None
    if not isinstance(data, dict):
        raise fail("invalid_json", f"the body must be a JSON object (a {what}), not a {type(data).__name__}")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def required_id(data: dict[str, Any], key: str, where: str = "") -> str:
    value = text_id(data.get(key), f"{where}{key}")
    if value is None:
        raise fail("missing_field", f"{where}{key} is required: the event_id is made from it")
    return value


def text_id(value: Any, path: str) -> str | None:
    """An id as a decimal string: JSON integers (Shopify's ids exceed 2**53, so never a float) or strings."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise fail("invalid_field", f"{path} must be an integer or a string")
    return str(value).strip() or None


def text(value: Any, path: str) -> str | None:
    """A string field, trimmed; None for null or empty. Numbers are taken as their text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise fail("invalid_field", f"{path} must be a string")
    return str(value).strip() or None


def money(value: Any, path: str) -> float | None:
    """A decimal amount as the shops send it ("29.35", or a JSON number); None for null or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise fail("invalid_field", f"{path} must be a decimal amount")
    number = parse_number(value.strip()) if isinstance(value, str) else value
    if not isinstance(number, (int, float)):
        raise fail("invalid_field", f"{path} must be a decimal amount such as \"29.35\"")
    return float(number)


def currency(value: Any, path: str) -> str | None:
    if value is None or value == "":
        return None
    code = currency_code(value) if isinstance(value, str) else None
    if code is None:
        raise fail("invalid_field", f"{path} {CURRENCY_RULE}")
    return code


def objects(value: Any, path: str) -> list[dict[str, Any]]:
    """A list of JSON objects (null = none)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise fail("invalid_field", f"{path} must be a list of objects")
    return value


def mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail("invalid_field", f"{path} must be an object")
    return value


def check_items(items: list[Any], path: str) -> None:
    if len(items) > MAX_ITEMS_PER_EVENT:
        raise fail("too_many_items", f"{path} has {len(items)} lines; at most {MAX_ITEMS_PER_EVENT}", STATUS_TOO_LARGE)


def timestamp(value: Any, path: str, now: float) -> float | None:
    """An ISO 8601 date-time (with an offset, or UTC when it has none), refused outside the usual range."""
    return None if value in (None, "") else parse_json_timestamp(path, value, now)


def saved_cookies(pairs: list[dict[str, Any]], name_key: str) -> dict[str, str]:
    """The SAVED_COOKIES among an order's name/value attributes."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, value = pair.get(name_key), pair.get("value")
        if name in SAVED_COOKIES and isinstance(value, str) and value.strip() and name not in out:
            out[name] = value.strip()
    return out


def webhook_context(raw: RawHit, cookies: dict[str, str]) -> HitContext:
    """The context an order's events are built with: the cookies the storefront saved on the order, and
    none of the request's own client signals (its IP, user agent and geo are the shop's server's). The
    event keeps the webhook's own headers (topic, shop), which tags may read."""
    ctx = HitContext(raw.model_copy(update={"cookies": cookies, "headers": {}, "client_ip": None}))
    ctx.headers = {k: v for k, v in raw.headers.items() if k.startswith(WEBHOOK_HEADER_PREFIXES)}
    return ctx


def order_click_ids(ctx: HitContext, page_url: str | None, ts: float) -> dict[str, str]:
    """click_ids from the saved cookies and the landing page, and an fbc made from a landing fbclid when the
    order has no _fbc of that click: a browser hit gets one from collect's cookie plan, an order never passes
    through it. Meta (https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/
    fbp-and-fbc/): without a stored _fbc, creationTime is when the fbclid was first observed, here the
    order's time; subdomainIndex 1 for a value made on a server and saved in no cookie [unverified: the
    excerpt read here stopped before that sentence]. Four segments, without the parameter builder's appendix
    (Meta takes both, VENDORS.md §1.4), so the event does not depend on the installed builder."""
    ids = click_ids(ctx, page_url)
    fbclid = ids.get("fbclid")
    if fbclid and "fbc" not in ids and "." not in fbclid:  # a dotted value cannot round-trip the fbc format
        ids["fbc"] = f"fb.1.{int(ts * 1000)}.{fbclid}"
    return ids


def client_ip(*candidates: Any) -> str | None:
    return best_client_ip(*(c.strip() for c in candidates if isinstance(c, str)))


def drop_empty(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
