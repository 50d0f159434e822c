"""Shopify order webhooks (POST paths.shopify): orders/create and orders/paid -> one `purchase`,
refunds/create -> one `refund`; any other topic carries neither (collect records it as ignored).

Shopify's documents, read for this module:
- Verify webhooks: X-Shopify-Hmac-Sha256 is the base64 HMAC-SHA256 of the raw body with the app's client
  secret, compared in constant time (https://shopify.dev/docs/apps/build/webhooks/subscribe/https); the
  headers X-Shopify-Topic, X-Shopify-Shop-Domain, X-Shopify-Webhook-Id, X-Shopify-Triggered-At (same page).
- Retries: "8 times over 4 hours ... delivered with the original payload" (changelog, 2024-09-10:
  https://shopify.dev/changelog/updates-to-webhook-retry-mechanism; the issue's 48 h is the older rule);
  duplicates share X-Shopify-Event-Id (https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates). The
  order id in the body is the same in all of them, so their event_id is too.
- The Order resource (https://shopify.dev/docs/api/admin-rest/latest/resources/order): id, order_number,
  name, email, contact_email, phone, currency (the shop's), total_price, total_tax,
  total_shipping_price_set, discount_codes[].code, line_items[] {product_id, variant_id, sku, title,
  variant_title, vendor, quantity, price, total_discount}, customer {id, email, phone, first_name,
  last_name, default_address}, billing_address / shipping_address {first_name, last_name, address1,
  city, province, province_code, zip, country, country_code, phone}, browser_ip, client_details
  {browser_ip, user_agent, accept_language}, landing_site (the first page of the visit, with its query:
  gclid, fbclid, ttclid ...), referring_site, note_attributes [{name, value}] (the cart's attributes),
  source_name ("web", "pos", ...), created_at / processed_at.
- The Refund resource (https://shopify.dev/docs/api/admin-rest/latest/resources/refund): id, order_id,
  created_at, processed_at, refund_line_items[] {quantity, subtotal, total_tax, line_item {...}},
  transactions[] {kind: "refund", status, amount, currency}.

The purchase's event_id is the order id (docs/webhooks.md): orders/create and orders/paid of one order,
and every retry, are the same event, so the first delivered wins and the others are duplicates.
"""

from __future__ import annotations

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

SIGNATURE_HEADER = "x-shopify-hmac-sha256"
TOPIC_HEADER = "x-shopify-topic"
SHOP_HEADER = "x-shopify-shop-domain"
# kept in the raw hit (collect): what the webhook says about itself; the signature is checked and dropped
KEPT_HEADERS = (TOPIC_HEADER, SHOP_HEADER, "x-shopify-webhook-id", "x-shopify-triggered-at",
                "x-shopify-event-id", "x-shopify-api-version")  # fmt: skip

PURCHASE_TOPICS = frozenset({"orders/create", "orders/paid"})
REFUND_TOPICS = frozenset({"refunds/create"})


def verify(headers: dict[str, str], body: bytes, secret: str, secret_env: str) -> None:
    check_signature("X-Shopify-Hmac-Sha256", headers.get(SIGNATURE_HEADER), body, secret, secret_env)


def parse(raw: RawHit, now: float) -> list[Event]:
    topic = (raw.headers.get(TOPIC_HEADER) or "").strip()
    if not topic:
        raise fail("missing_field", "header X-Shopify-Topic is required (orders/create, orders/paid or refunds/create)")
    if topic in PURCHASE_TOPICS:
        return [_purchase(raw, load_object(raw, "Shopify order"), now)]
    if topic in REFUND_TOPICS:
        return [_refund(raw, load_object(raw, "Shopify refund"), now)]
    load_object(raw, "Shopify")  # an ignored topic still has to be a JSON object
    return []


def _purchase(raw: RawHit, order: dict[str, Any], now: float) -> Event:
    order_id = required_id(order, "id")
    shop = (raw.headers.get(SHOP_HEADER) or "").strip().lower() or None
    client_details = mapping(order.get("client_details"), "client_details")
    customer = mapping(order.get("customer"), "customer")
    ctx = webhook_context(raw, saved_cookies(objects(order.get("note_attributes"), "note_attributes"), "name"))
    page_url = _landing_url(text(order.get("landing_site"), "landing_site"), shop)
    user_agent = text(client_details.get("user_agent"), "client_details.user_agent")
    source_name = text(order.get("source_name"), "source_name")
    lines = objects(order.get("line_items"), "line_items")
    check_items(lines, "line_items")
    shipping = mapping(mapping(order.get("total_shipping_price_set"), "total_shipping_price_set").get("shop_money"),
                       "total_shipping_price_set.shop_money")
    codes = [text(c.get("code"), "discount_codes[].code") for c in objects(order.get("discount_codes"), "discount_codes")]
    emails = [e for e in (text(order.get("email"), "email"), text(order.get("contact_email"), "contact_email"),
                          text(customer.get("email"), "customer.email")) if e]
    phones = [p for p in (text(order.get("phone"), "phone"), text(customer.get("phone"), "customer.phone")) if p]
    address = _address(order, customer)
    if (address_phone := address.pop("phone", None)) and not phones:
        phones.append(address_phone)
    ts = (timestamp(order.get("processed_at"), "processed_at", now)
          or timestamp(order.get("created_at"), "created_at", now) or raw.received_at)

    event = event_base(raw, ctx, 0, order_id, "purchase", ts)
    event.update(
        action_source=_action_source(source_name, user_agent, page_url),
        page={"url": page_url, "referrer": text(order.get("referring_site"), "referring_site")},
        client={
            "client_id": ctx.ga_client_id,
            "user_id": text_id(customer.get("id"), "customer.id"),
            "ip": client_ip(client_details.get("browser_ip"), order.get("browser_ip")),
            "user_agent": user_agent,
            "language": text(client_details.get("accept_language"), "client_details.accept_language"),
        },
        user_data={
            "email": emails[0] if emails else None,
            "other_emails": _unique(emails[1:], emails[:1]),
            "phone": phones[0] if phones else None,
            "other_phones": _unique(phones[1:], phones[:1]),
            "address": address,
        },
        click_ids=order_click_ids(ctx, page_url, ts),
        ecommerce=drop_empty({
            "value": money(order.get("total_price"), "total_price"),
            "currency": currency(order.get("currency"), "currency"),
            "transaction_id": order_id,
            "tax": money(order.get("total_tax"), "total_tax"),
            "shipping": money(shipping.get("amount"), "total_shipping_price_set.shop_money.amount"),
            "coupon": ",".join(c for c in codes if c) or None,
            "items": [_item(line, f"line_items[{i}]") for i, line in enumerate(lines)],
        }),
    )
    return Event.model_validate(event)


def _refund(raw: RawHit, refund: dict[str, Any], now: float) -> Event:
    refund_id = required_id(refund, "id")
    order_id = required_id(refund, "order_id")
    lines = objects(refund.get("refund_line_items"), "refund_line_items")
    check_items(lines, "refund_line_items")
    transactions = [t for t in objects(refund.get("transactions"), "transactions")
                    if t.get("kind") == "refund" and t.get("status") in (None, "success")]
    amounts = [money(t.get("amount"), "transactions[].amount") for t in transactions]
    value = sum(a for a in amounts if a is not None) if transactions else None
    codes = {currency(t.get("currency"), "transactions[].currency") for t in transactions} - {None}
    if value is None and lines:  # no refund transaction (a restock only): what the lines were worth
        value = sum((money(rl.get("subtotal"), "refund_line_items[].subtotal") or 0.0)
                    + (money(rl.get("total_tax"), "refund_line_items[].total_tax") or 0.0) for rl in lines)
        for rl in lines:
            shop_money = mapping(mapping(rl.get("subtotal_set"), "refund_line_items[].subtotal_set").get("shop_money"),
                                 "refund_line_items[].subtotal_set.shop_money")
            codes.add(currency(shop_money.get("currency_code"), "refund_line_items[].subtotal_set.shop_money"))
        codes.discard(None)
    code = codes.pop() if len(codes) == 1 else None  # several currencies in one refund: no single value
    ts = (timestamp(refund.get("processed_at"), "processed_at", now)
          or timestamp(refund.get("created_at"), "created_at", now) or raw.received_at)
    ctx = webhook_context(raw, {})
    items = []
    for i, rl in enumerate(lines):
        item = _item(mapping(rl.get("line_item"), f"refund_line_items[{i}].line_item"), f"refund_line_items[{i}].line_item")
        if (quantity := money(rl.get("quantity"), f"refund_line_items[{i}].quantity")) is not None:
            item["quantity"] = quantity
        items.append(item)

    event = event_base(raw, ctx, 0, f"refund-{refund_id}", "refund", ts)
    event.update(
        action_source="other",
        ecommerce=drop_empty({
            "value": value if code else None,
            "currency": code,
            "transaction_id": order_id,
            "items": items,
        }),
        params={"refund_id": refund_id},
    )
    return Event.model_validate(event)


def _item(line: dict[str, Any], path: str) -> dict[str, Any]:
    product_id = text_id(line.get("product_id"), f"{path}.product_id")
    variant_id = text_id(line.get("variant_id"), f"{path}.variant_id")
    sku = text(line.get("sku"), f"{path}.sku")
    quantity = money(line.get("quantity"), f"{path}.quantity")
    discount = money(line.get("total_discount"), f"{path}.total_discount")
    return drop_empty({
        # the variant is what was bought (the pixel's lineItems[].variant.id); a line of a deleted or
        # variant-less product falls back to its product id, then its SKU
        "item_id": variant_id or product_id or sku,
        "item_name": text(line.get("title"), f"{path}.title"),
        "item_variant": text(line.get("variant_title"), f"{path}.variant_title"),
        "item_brand": text(line.get("vendor"), f"{path}.vendor"),
        "price": money(line.get("price"), f"{path}.price"),
        "quantity": quantity,
        "discount": discount / quantity if discount and quantity else None,  # GA4: per unit
        "custom": drop_empty({"product_id": product_id, "variant_id": variant_id, "sku": sku}),
    })


def _address(order: dict[str, Any], customer: dict[str, Any]) -> dict[str, Any]:
    """The billing address, else the shipping address, else the customer's default one; the customer's
    names where the address has none."""
    for key in ("billing_address", "shipping_address"):
        if address := mapping(order.get(key), key):
            break
    else:
        address = mapping(customer.get("default_address"), "customer.default_address")
    return drop_empty({
        "first_name": text(address.get("first_name"), "address.first_name")
        or text(customer.get("first_name"), "customer.first_name"),
        "last_name": text(address.get("last_name"), "address.last_name")
        or text(customer.get("last_name"), "customer.last_name"),
        "street": text(address.get("address1"), "address.address1"),
        "city": text(address.get("city"), "address.city"),
        "region": text(address.get("province_code"), "address.province_code") or text(address.get("province"),
                                                                                       "address.province"),
        "postal_code": text(address.get("zip"), "address.zip"),
        "country": text(address.get("country_code"), "address.country_code"),
        "phone": text(address.get("phone"), "address.phone"),
    })


def _landing_url(landing_site: str | None, shop: str | None) -> str | None:
    """landing_site is a path ("/products/x?gclid=...") or a full URL; a path is put on the shop's domain.
    Without one, the shop's own root stands for the page (Meta needs a URL for a website event)."""
    if landing_site and landing_site.startswith(("http://", "https://")):
        return landing_site
    if not shop:
        return None
    return f"https://{shop}{landing_site if landing_site and landing_site.startswith('/') else '/'}"


def _action_source(source_name: str | None, user_agent: str | None, page_url: str | None) -> str:
    """Meta's action_source: a point-of-sale order happened in a shop; an order with the buyer's browser
    (user agent and page) on the website; anything else (draft orders, API, other channels) is "other".
    Meta requires event_source_url and client_user_agent for website events (../shared/VENDORS.md §1.2)."""
    if source_name == "pos":
        return "physical_store"
    return "website" if user_agent and page_url else "other"


def _unique(values: list[str], taken: list[str]) -> list[str]:
    seen = {v.lower() for v in taken}
    out = []
    for v in values:
        if v.lower() not in seen:
            seen.add(v.lower())
            out.append(v)
    return out
