"""Words for people: destination names, event names, reason codes and numbers as a marketer reads them.

    "Meta: 37% of purchases failed in the last 15 minutes (was 0.4%) — the access token expired
     (meta:190). Events are being kept and will be replayable."

Reason codes stay in the sentence (in brackets) so an engineer can grep for them; the words before
them say what happened. Unknown codes fall back to the outcome's `detail`, which is a short human
sentence without PII by contract (tagpipe.models.Outcome).
"""

from __future__ import annotations

import re

from tagpipe import reasons

VENDOR_NAMES = {
    "meta": "Meta", "ga4": "GA4", "google_ads": "Google Ads",
    "data_manager": "Google Data Manager", "tiktok": "TikTok", "webhook": "Webhook",
    "pinterest": "Pinterest", "snapchat": "Snapchat", "reddit": "Reddit", "linkedin": "LinkedIn",
    "microsoft_ads": "Microsoft Ads",
    "log": "Dry run",
}

EVENT_PLURALS = {
    "purchase": "purchases", "completepayment": "purchases", "page_view": "page views", "pageview": "page views",
    "add_to_cart": "add-to-carts", "addtocart": "add-to-carts", "begin_checkout": "checkouts",
    "initiatecheckout": "checkouts", "generate_lead": "leads", "lead": "leads", "sign_up": "sign-ups",
    "completeregistration": "sign-ups", "view_item": "product views", "viewcontent": "product views",
    "search": "searches", "add_payment_info": "payment-info events", "addpaymentinfo": "payment-info events",
    "subscribe": "subscriptions", "contact": "contacts", "add_to_wishlist": "wishlist adds",
    "addtowishlist": "wishlist adds", "conversion": "conversions", "refund": "refunds",
}

IDENTIFIER_NAMES = {
    "em": "email", "ph": "phone", "fbp": "browser ID (fbp)", "fbc": "click ID (fbc)", "external_id": "customer ID",
    "fn": "first name", "ln": "last name", "ip_ua": "IP + user agent", "client_id": "client ID",
    "user_id": "user ID", "gclid": "Google click ID", "ttclid": "TikTok click ID", "ttp": "TikTok cookie",
    "address": "address", "epik": "Pinterest click ID", "sc_click_id": "Snapchat click ID",
    "sc_cookie1": "Snap cookie", "rdt_cid": "Reddit click ID", "rdt_uuid": "Reddit cookie",
    "li_fat_id": "LinkedIn click ID", "msclkid": "Microsoft click ID", "uet_vid": "UET visitor ID",
}

# exact reason codes -> what happened, in words ({name} is the destination's display name); the
# registry (tagpipe.reasons, reasons.json) is where they are defined
REASONS = {code: r.words for code, r in reasons.codes().items() if r.words}


def destination_label(dest_id: str, dest_type: str | None = None) -> str:
    """`meta` -> Meta; a second Meta destination `meta_eu` -> Meta (meta_eu); `*` -> Collect."""
    if dest_id == "*":
        return "Collect"
    dest_type = dest_type or dest_id
    name = VENDOR_NAMES.get(dest_type)
    if name is None:
        return dest_id
    return name if dest_id == dest_type else f"{name} ({dest_id})"


def event_plural(name: str | None) -> str:
    if not name:
        return "events"
    key = re.sub(r"[^a-z0-9_]", "", name.lower())
    return EVENT_PLURALS.get(key, f"{name} events")


def identifier_name(key: str) -> str:
    return IDENTIFIER_NAMES.get(key, key)


def explain_reason(reason: str, detail: str = "", name: str = "the destination") -> str:
    """What a reason code means, in words; the code itself is appended by the caller."""
    return reasons.words(reason or "", name) or clean_detail(detail) or "an unexpected error"


def clean_detail(detail: str) -> str:
    """An outcome detail without the trailing technical bits deliver appends (status=..., bodies)."""
    detail = re.sub(r"\s*\(status=[^)]*\)\s*$", "", detail or "").strip()
    return detail[:160]


def pct(share: float) -> str:
    """0.37 -> '37%', 0.004 -> '0.4%', 0 -> '0%'."""
    value = share * 100
    if value == 0:
        return "0%"
    if value < 10:
        text = f"{value:.1f}".rstrip("0").rstrip(".")
        return f"{text}%" if text != "0" else "<0.1%"
    return f"{round(value)}%"


def count(n: float) -> str:
    return f"{int(round(n)):,}"


def duration(seconds: float) -> str:
    """90 -> '2 minutes', 3600 -> '1 hour', 5400 -> '90 minutes', 86400*7 -> '7 days'."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        n = round(seconds)
        return f"{n} second{'s' if n != 1 else ''}"
    minutes = seconds / 60
    if minutes < 120 and not (minutes % 60 == 0 and minutes >= 60):
        n = round(minutes)
        return f"{n} minute{'s' if n != 1 else ''}"
    hours = minutes / 60
    if hours < 48:
        n = round(hours)
        return f"{n} hour{'s' if n != 1 else ''}"
    n = round(hours / 24)
    return f"{n} day{'s' if n != 1 else ''}"


def window_phrase(seconds: float) -> str:
    """'the last 15 minutes', 'the last hour'."""
    text = duration(seconds)
    return "the last " + (text[2:] if text.startswith("1 ") else text)
