"""WooCommerce order webhooks (POST paths.woocommerce): order.created / order.updated / order.restored ->
a `purchase` once the order is placed (status processing, completed or on-hold), and one `refund` per
entry of its `refunds`; any other topic, or an order not placed yet (pending, failed, cancelled, ...),
carries neither (collect records it as ignored).

WooCommerce's documents and source, read for this module:
- Webhooks (https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks, "Delivery/payload"): headers
  X-WC-Webhook-Source (the site's home URL), X-WC-Webhook-Topic (order.updated), X-WC-Webhook-Resource,
  X-WC-Webhook-Event, X-WC-Webhook-Signature ("a base64 encoded HMAC-SHA256 hash of the payload"),
  X-WC-Webhook-ID, X-WC-Webhook-Delivery-ID; the payload is the order exactly as the REST API returns it.
- WC_Webhook (plugins/woocommerce/includes/class-wc-webhook.php): generate_signature =
  base64_encode(hash_hmac('sha256', $payload, $secret, true)) over the JSON body as sent; a new delivery id
  per delivery (wp_hash of the webhook id and the time), so retries do not share one; 2xx-302 counts as
  delivered and more than 5 failures in a row disable the webhook; deliver_ping posts the form body
  `webhook_id=<id>`, unsigned, when a webhook is saved, and wants exactly 200.
- The order (https://woocommerce.github.io/woocommerce-rest-api-docs/#order-properties): id, number,
  status (pending, processing, on-hold, completed, cancelled, refunded, failed, trash), currency, total,
  total_tax, shipping_total, date_created_gmt, date_modified_gmt, customer_id (0 = guest),
  customer_ip_address, customer_user_agent, billing {first_name, last_name, address_1, city, state,
  postcode, country, email, phone}, shipping {...}, line_items[] {product_id, variation_id, sku, name,
  quantity, price, total}, coupon_lines[] {code}, refunds[] {id, reason, total (negative)},
  meta_data[] {id, key, value}.

The purchase's event_id is the order id (docs/webhooks.md): every update of a placed order is the same
purchase, so the first delivered wins and the rest are duplicates.
"""

from __future__ import annotations

import html
import re
from typing import Any

from tagpipe.models import Event, RawHit

from ._common import event_base, fail
from ._orders import (
    check_items,
    check_signature,
    client_ip,
    currency,
    drop_empty,
    load_object,
    mapping,
    money,
    objects,
    order_click_ids,
    required_id,
    saved_cookies,
    text,
    text_id,
    timestamp,
    webhook_context,
)

SIGNATURE_HEADER = "x-wc-webhook-signature"
TOPIC_HEADER = "x-wc-webhook-topic"
SOURCE_HEADER = "x-wc-webhook-source"
KEPT_HEADERS = (TOPIC_HEADER, SOURCE_HEADER, "x-wc-webhook-resource", "x-wc-webhook-event", "x-wc-webhook-id",
                "x-wc-webhook-delivery-id")  # fmt: skip

ORDER_TOPICS = frozenset({"order.created", "order.updated", "order.restored"})
# the statuses of an order the customer placed: paid (wc_get_is_paid_statuses: processing, completed) or
# awaiting an offline payment (on-hold: bank transfer, cheque), the orders WooCommerce thanks the buyer for
PLACED_STATUSES = frozenset({"processing", "completed", "on-hold"})

_PING = re.compile(r"webhook_id=\d{1,20}")


def is_ping(headers: dict[str, str], body: str) -> bool:
    """WooCommerce's test ping when a webhook is saved: unsigned, no topic, `webhook_id=<id>`."""
    return SIGNATURE_HEADER not in headers and TOPIC_HEADER not in headers and bool(_PING.fullmatch(body.strip()))


def verify(headers: dict[str, str], body: bytes, secret: str, secret_env: str) -> None:
    if secret and is_ping(headers, body.decode("utf-8", "replace")):
        return  # carries nothing: answered 200 and recorded as ignored
    # without a secret even the ping is refused: WooCommerce then shows the 401 when the webhook is saved
    check_signature("X-WC-Webhook-Signature", headers.get(SIGNATURE_HEADER), body, secret, secret_env)


def parse(raw: RawHit, now: float) -> list[Event]:
    if is_ping(raw.headers, raw.body):
        return []
    topic = (raw.headers.get(TOPIC_HEADER) or "").strip()
    if not topic:
        raise fail("missing_field", "header X-WC-Webhook-Topic is required (order.created or order.updated)")
    order = load_object(raw, "WooCommerce order")
    if topic not in ORDER_TOPICS:
        return []
    order_id = required_id(order, "id")
    status = text(order.get("status"), "status")
    events = []
    if status in PLACED_STATUSES:
        events.append(_purchase(raw, order, order_id, now))
    events += _refunds(raw, order, order_id, now, first_index=len(events))
    return events


def _purchase(raw: RawHit, order: dict[str, Any], order_id: str, now: float) -> Event:
    billing = mapping(order.get("billing"), "billing")
    shipping = mapping(order.get("shipping"), "shipping")
    where = "billing" if any(billing.get(k) for k in ("first_name", "last_name", "address_1", "postcode")) else "shipping"
    address = billing if where == "billing" else shipping
    ctx = webhook_context(raw, saved_cookies(objects(order.get("meta_data"), "meta_data"), "key"))
    page_url = text(raw.headers.get(SOURCE_HEADER), "header X-WC-Webhook-Source")
    user_agent = text(order.get("customer_user_agent"), "customer_user_agent")
    lines = objects(order.get("line_items"), "line_items")
    check_items(lines, "line_items")
    codes = [text(c.get("code"), "coupon_lines[].code") for c in objects(order.get("coupon_lines"), "coupon_lines")]

    ts = _order_time(order, "date_created_gmt", raw, now)
    event = event_base(raw, ctx, 0, order_id, "purchase", ts)
    event.update(
        # Meta requires event_source_url and client_user_agent for website events (../shared/VENDORS.md §1.2)
        action_source="website" if user_agent and page_url else "other",
        page={"url": page_url},
        client={
            "client_id": ctx.ga_client_id,
            "user_id": text_id(order.get("customer_id"), "customer_id"),
            "ip": client_ip(order.get("customer_ip_address")),
            "user_agent": user_agent,
        },
        user_data={
            "email": text(billing.get("email"), "billing.email"),
            "phone": text(billing.get("phone"), "billing.phone") or text(shipping.get("phone"), "shipping.phone"),
            "address": drop_empty({
                "first_name": text(address.get("first_name"), f"{where}.first_name"),
                "last_name": text(address.get("last_name"), f"{where}.last_name"),
                "street": text(address.get("address_1"), f"{where}.address_1"),
                "city": text(address.get("city"), f"{where}.city"),
                "region": text(address.get("state"), f"{where}.state"),
                "postal_code": text(address.get("postcode"), f"{where}.postcode"),
                "country": text(address.get("country"), f"{where}.country"),
            }),
        },
        click_ids=order_click_ids(ctx, page_url, ts),
        ecommerce=drop_empty({
            "value": money(order.get("total"), "total"),
            "currency": currency(order.get("currency"), "currency"),
            "transaction_id": order_id,
            "tax": money(order.get("total_tax"), "total_tax"),
            "shipping": money(order.get("shipping_total"), "shipping_total"),
            "coupon": ",".join(c for c in codes if c) or None,
            "items": [_item(line, f"line_items[{i}]") for i, line in enumerate(lines)],
        }),
    )
    return Event.model_validate(event)


def _refunds(raw: RawHit, order: dict[str, Any], order_id: str, now: float, first_index: int) -> list[Event]:
    refunds = objects(order.get("refunds"), "refunds")
    if not refunds:
        return []
    code = currency(order.get("currency"), "currency")
    ts = _order_time(order, "date_modified_gmt", raw, now)
    ctx = webhook_context(raw, {})
    events = []
    for i, refund in enumerate(refunds):
        refund_id = required_id(refund, "id", f"refunds[{i}].")
        total = money(refund.get("total"), f"refunds[{i}].total")
        event = event_base(raw, ctx, first_index + i, f"refund-{refund_id}", "refund", ts)
        event.update(
            action_source="other",
            ecommerce=drop_empty({
                "value": abs(total) if total is not None and code else None,  # WooCommerce sends it negative
                "currency": code,
                "transaction_id": order_id,
            }),
            params={"refund_id": refund_id},
        )
        events.append(Event.model_validate(event))
    return events


def _order_time(order: dict[str, Any], key: str, raw: RawHit, now: float) -> float:
    """A *_gmt date-time (no offset: UTC), else the local one (the site's timezone, unknown here: taken as
    UTC), else when the webhook arrived."""
    local = key.removesuffix("_gmt")
    return timestamp(order.get(key), key, now) or timestamp(order.get(local), local, now) or raw.received_at


def _item(line: dict[str, Any], path: str) -> dict[str, Any]:
    product_id = text_id(line.get("product_id"), f"{path}.product_id")
    variation_id = text_id(line.get("variation_id"), f"{path}.variation_id")
    sku = text(line.get("sku"), f"{path}.sku")
    quantity = money(line.get("quantity"), f"{path}.quantity")
    price = money(line.get("price"), f"{path}.price")
    if price is None and quantity and (total := money(line.get("total"), f"{path}.total")) is not None:
        price = total / quantity
    name = text(line.get("name"), f"{path}.name")
    return drop_empty({
        "item_id": variation_id or product_id or sku,  # the variation is what was bought, as for Shopify
        "item_name": html.unescape(name) if name else None,  # the REST API sends names HTML-escaped (&ndash;)
        "price": price,
        "quantity": quantity,
        "custom": drop_empty({"product_id": product_id, "variation_id": variation_id, "sku": sku}),
    })
