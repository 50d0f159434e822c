"""What the dashboard and debug view may show: no PII, whatever the store holds.

The store may keep raw hits byte for byte (raw_hits) and, with privacy.store_raw_pii, raw user data.
Everything the dashboard serves passes through `for_display`:

    keys that carry customer data (email, phone, names, street, postal code, birth date, ...)
        -> "[redacted]", or "sha256:1a2b3c4d…" when the value is already a hash
    IP addresses            -> truncated (/24, /48) as tagpipe.privacy does
    identifiers (ids, cookies, click ids) -> first 6 characters + "…"
    any other string        -> emails, phone-like digit runs and IPv4s replaced (tagpipe.privacy.scrub_text)
    64-hex hashes anywhere  -> shortened: enough to compare by eye, not to look up
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from tagpipe.privacy import (
    EMAIL_RE,
    HEX64_RE,
    IPV4_RE,
    PHONE_RE,
    REDACTED,
    SECRET_MASK,
    SECRET_NAMES,
    mask_secret_params,
    truncate_ip,
)

PII_KEYS = {
    "email", "em", "email_address", "sha256_email_address", "phone", "ph", "pn", "phone_number",
    "sha256_phone_number", "first_name", "fn", "fn0", "sha256_first_name", "last_name", "ln", "ln0",
    "sha256_last_name", "street", "sha256_street", "st", "postal_code", "zp", "zip", "date_of_birth", "db",
    "dob", "birthday", "gender", "ge", "full_name", "address", "street_address",
}
IP_KEYS = {"ip", "client_ip", "client_ip_address", "uip", "_uip", "ip_address", "x-forwarded-for", "x-real-ip"}
ID_KEYS = {
    "external_id", "user_id", "uid", "client_id", "cid", "fbp", "fbc", "fbclid", "gclid", "gbraid", "wbraid",
    "dclid", "ttclid", "ttp", "_fbp", "_fbc", "_ga", "_gid", "_ttp", "sid", "session_id", "anonymous_id",
    "cookie", "cookies",
}
SECRET_KEYS = {*SECRET_NAMES, "authorization", "developer_token", "x-api-key"}  # masked whole, never a prefix
NUMERIC_KEYS = {"_p", "_s", "_et", "tfd", "event_time", "timestamp", "timestamp_micros", "ts", "value", "price",
                "quantity", "_ss", "_fv", "sct", "seg", "_nsi", "_z", "dma", "npa"}
HEX64_ANY = re.compile(r"\b[0-9a-fA-F]{64}\b")


def short_hash(value: str) -> str:
    return f"sha256:{value[:8]}…"


def mask_id(value: Any) -> str:
    text = str(value)
    return "•••" if len(text) <= 8 else f"{text[:6]}…"


def scrub_string(text: str, phone_like: bool = True) -> str:
    text = mask_secret_params(text)
    text = HEX64_ANY.sub(lambda m: short_hash(m.group(0).lower()), text)
    text = EMAIL_RE.sub(REDACTED, text)
    text = IPV4_RE.sub(REDACTED, text)
    return PHONE_RE.sub(REDACTED, text) if phone_like else text


def _leaf_key(key: str) -> str:
    key = key.lower()
    for prefix in ("ep.", "epn.", "up.", "upn.", "user_data.", "ud.", "sha256_"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key.rsplit(".", 1)[-1]


def _pii_value(value: Any) -> Any:
    if value is None or value == "" or value == []:
        return value
    if isinstance(value, str) and HEX64_RE.match(value.strip().lower()):
        return short_hash(value.strip().lower())
    if isinstance(value, list):
        return [_pii_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _pii_value(v) for k, v in value.items()}
    return REDACTED


def for_display(value: Any, key: str = "") -> Any:
    """A deep copy of `value` safe to show (see the module docstring)."""
    leaf = _leaf_key(key) if key else ""
    if leaf in PII_KEYS or key.lower() in PII_KEYS:
        return _pii_value(value)
    if leaf in SECRET_KEYS and value not in (None, ""):
        return SECRET_MASK
    if leaf in ("cookies", "cookie") and isinstance(value, dict):
        return {k: mask_id(v) for k, v in value.items()}
    if leaf in IP_KEYS:
        return truncate_ip(value) if isinstance(value, str) else value
    if leaf in ID_KEYS and isinstance(value, (str, int)) and value != "":
        return mask_id(value)
    if isinstance(value, dict):
        return {k: for_display(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [for_display(v, key) for v in value]
    if isinstance(value, str):
        return scrub_string(value, phone_like=leaf not in NUMERIC_KEYS)
    return value


def query_for_display(query: str) -> list[list[str]]:
    """A query string as [key, safe value] pairs (gtag hits carry everything in the query)."""
    return [[k, str(for_display(v, k))] for k, v in parse_qsl(query, keep_blank_values=True)]


def body_for_display(body: str, content_type: str = "") -> Any:
    """A request body: JSON is scrubbed key by key; a gtag batch (lines of query strings) line by line."""
    text = body.strip()
    if not text:
        return ""
    if text[:1] in "[{":
        try:
            return for_display(json.loads(text))
        except ValueError:
            pass
    if "=" in text and "\n" in text or ("=" in text and " " not in text and "form" in content_type):
        return [query_for_display(line) for line in text.splitlines() if line.strip()]
    if "=" in text and " " not in text and "&" in text:
        return [query_for_display(text)]
    return scrub_string(text[:4000])


def raw_hit_for_display(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored RawHit (tagpipe.models.RawHit as JSON) with every PII-bearing part scrubbed."""
    headers = {k: v for k, v in (doc.get("headers") or {}).items()
               if k.lower() not in ("cookie", "authorization", "x-forwarded-for", "x-real-ip")}
    return {
        "hit_id": doc.get("hit_id"),
        "received_at": doc.get("received_at"),
        "source": doc.get("source"),
        "method": doc.get("method"),
        "path": doc.get("path"),
        "query": query_for_display(doc.get("query") or ""),
        "body": body_for_display(doc.get("body") or "", headers.get("content-type", "")),
        "headers": for_display(headers),
        "cookies": {k: mask_id(v) for k, v in (doc.get("cookies") or {}).items()},
        "client_ip": truncate_ip(doc.get("client_ip")),
        "debug_token": doc.get("debug_token"),
    }


def only_events(body: Any, event_ids: set[str]) -> Any:
    """A batched vendor request carries other visitors' events: keep only the ones named by event_ids."""
    if not isinstance(body, dict) or not event_ids:
        return body
    out = dict(body)
    for key, value in body.items():
        if isinstance(value, list) and len(value) > 1 and all(isinstance(v, dict) for v in value):
            mine = [v for v in value if any(eid in json.dumps(v) for eid in event_ids)]
            if mine:
                out[key] = mine
                if len(mine) < len(value):
                    n = len(value) - len(mine)
                    out[f"_{key}_hidden"] = f"{n} other event{'s' if n != 1 else ''} in this batch not shown"
    return out
