"""PII handling: what may be stored or logged, and in what form.

Raw customer data (email, phone, names, street, IP) lives only in memory between parse and the
per-vendor hashing in transform. What is stored is pseudonymised: SHA-256 of the normalised value
(lowercase, trimmed), so `erase` can still find a user by email hash, and IPs are truncated.
Free text that may hold PII (failed payloads) is scrubbed by pattern, in the manner of Sentry's
PII scrubbing. Users can opt in to keeping raw PII (privacy.store_raw_pii).

`[privacy]` (PrivacyConfig, below) also sets what vendors get of the IP (`ip_to_vendors`), what the
store keeps of it (`ip_in_store`) and how long the local store keeps anything (`retention_days`,
see tagpipe.ops.erase). docs/privacy.md has the whole picture.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tagpipe.models import Address, Event, UserData

# `name=value` pairs whose value is a credential: GA4 MP's api_secret (and our own key sent as one),
# vendor tokens in URLs. Masked in whatever is stored (raw hits, failed events), logged or shown.
SECRET_NAMES = ("access_token", "api_secret", "api_key", "appsecret_proof", "token", "secret", "password",
                "developer-token", "key")
SECRET_PARAM = re.compile(rf"(?i)\b({'|'.join(map(re.escape, SECRET_NAMES))})=([^&\s\"']+)")
SECRET_MASK = "***"

# the names' last words ("token=", "secret=", "key=", ...): a plain substring test (~1 µs) spares the
# regex (~30 µs on a 700-byte gtag query) on the hits that carry no credential, i.e. nearly all
_SECRET_HINTS = tuple({re.split(r"[_-]", name)[-1] + "=" for name in SECRET_NAMES})


def mask_secret_params(text: str) -> str:
    lowered = text.lower()
    if not any(hint in lowered for hint in _SECRET_HINTS):
        return text
    return SECRET_PARAM.sub(lambda m: f"{m.group(1)}={SECRET_MASK}", text)

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"(?<![\w.])(?:\+|%2B|00)?\d[\d\s().\-]{6,}\d(?![\w.])")
IPV4_RE = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
REDACTED = "[redacted]"
# IPv6 candidates (validated with ipaddress before replacing): 8 groups, or a '::' compression
IPV6_CANDIDATE_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|\d{1,3}(?:\.\d{1,3}){3})(?![\w:])")


class PrivacyConfig(BaseModel):
    """`[privacy]`: replaces config.py's section of the same name (same `store_raw_pii` key)."""

    model_config = ConfigDict(extra="forbid")

    store_raw_pii: bool = Field(False, description="keep raw email/phone/IP in stored events and failures")
    ip_to_vendors: Literal["full", "truncated", "none"] = Field(
        "full", description="the client IP destinations receive: full, truncated (/24, /48) or none"
    )
    ip_in_store: Literal["auto", "full", "truncated", "none"] = Field(
        "auto", description="the IP stored events keep; auto = full if store_raw_pii else truncated"
    )
    retention_days: int = Field(0, ge=0, le=3650, description="delete local records older than this; 0 = keep")
    raw_hits_retention_days: int = Field(
        30, ge=0, le=3650, description="raw hits (as received: raw email, phone, IP; the replayable input) are "
        "deleted after this many days (as BigQuery's raw_hits partitions expire); 0 = kept as retention_days says",
    )
    emails_to_vendors: Literal["scrub", "keep"] = Field(
        "scrub", description="scrub: email addresses out of page URLs, referrers, titles and custom parameters before "
        "destinations see them (the customer's email still goes, hashed, in user data)",
    )


def privacy_config(config: object) -> PrivacyConfig:
    section = getattr(config, "privacy", None)
    if isinstance(section, PrivacyConfig):
        return section
    if section is not None and hasattr(section, "store_raw_pii"):
        return PrivacyConfig(store_raw_pii=section.store_raw_pii)
    return PrivacyConfig()


def pseudonym(value: str | None) -> str | None:
    """SHA-256 of the trimmed, lowercased value; already-hashed values are kept."""
    if value is None:
        return None
    v = value.strip().lower()
    if not v:
        return None
    if HEX64_RE.match(v):
        return v
    return hashlib.sha256(v.encode()).hexdigest()


def _ipv4_octets(ip: str) -> list[str] | None:
    """The 4 octets of a dotted IPv4 exactly as ipaddress accepts it (1-3 ASCII digits, <= 255, no
    leading zero), else None (the caller falls back to ipaddress, which also knows IPv6)."""
    parts = ip.split(".")
    if len(parts) != 4:
        return None
    for p in parts:
        if not (0 < len(p) <= 3 and p.isascii() and p.isdigit()) or (p[0] == "0" and p != "0") or int(p) > 255:
            return None
    return parts


def truncate_ip(ip: str | None) -> str | None:
    """IPv4 keeps 3 octets, IPv6 keeps the /48 prefix: enough for geo, not for a person."""
    if not ip:
        return ip
    if (octets := _ipv4_octets(ip)) is not None:
        return f"{octets[0]}.{octets[1]}.{octets[2]}.0"
    return truncate_ip_by_ipaddress(ip)


def truncate_ip_by_ipaddress(ip: str) -> str | None:
    """truncate_ip for any address ipaddress knows (the fast path above must agree with it)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def _ip(ip: str | None, mode: str) -> str | None:
    if mode == "full":
        return ip
    if mode == "truncated":
        return truncate_ip(ip)
    return None


def vendor_event(event: Event, cfg: PrivacyConfig) -> Event:
    """The event as destinations may see it: the client IP per `ip_to_vendors`, and no email in clear text
    where vendors take free text (per `emails_to_vendors`).

    Why scrub: a tag that copies a parameter or the page URL into custom data would send an unhashed
    email. GA4's Measurement Protocol policy forbids uploading "email addresses" or other data that lets
    Google identify a person (developers.google.com/analytics/devguides/collection/protocol/ga4/policy);
    Meta and TikTok take customer information only hashed, in user_data (docs/destinations.md)."""
    update = _without_emails(event) if cfg.emails_to_vendors == "scrub" else {}
    if cfg.ip_to_vendors != "full" and event.client.ip:
        update["client"] = event.client.model_copy(update={"ip": _ip(event.client.ip, cfg.ip_to_vendors)})
    return event.model_copy(update=update) if update else event


def stored_event(event: Event, cfg: PrivacyConfig) -> Event:
    """The event as the store keeps it: pseudonymised unless store_raw_pii, the IP per `ip_in_store`."""
    mode = cfg.ip_in_store
    if mode == "auto":
        mode = "full" if cfg.store_raw_pii else "truncated"
    out = event if cfg.store_raw_pii else redact_event(event)
    ip = _ip(event.client.ip, mode)
    if out.client.ip != ip:
        out = out.model_copy(update={"client": out.client.model_copy(update={"ip": ip})})
    return out


def redact_event(event: Event) -> Event:
    """The event as it may be stored: user data pseudonymised, IP truncated, emails out of URLs."""
    ud = event.user_data
    a = ud.address
    user_data = UserData(
        email=pseudonym(ud.email),
        phone=pseudonym(_digits(ud.phone)),
        address=Address(
            first_name=pseudonym(a.first_name),
            last_name=pseudonym(a.last_name),
            street=pseudonym(a.street),
            city=a.city,
            region=a.region,
            postal_code=pseudonym(a.postal_code),
            country=a.country,
        ),
        other_emails=[x for e in ud.other_emails if (x := pseudonym(e))],
        other_phones=[x for p in ud.other_phones if (x := pseudonym(_digits(p)))],
        gender=pseudonym(ud.gender),
        date_of_birth=pseudonym(ud.date_of_birth),
        first_name_prefix=pseudonym(ud.first_name_prefix),
        last_name_prefix=pseudonym(ud.last_name_prefix),
        first_initial=pseudonym(ud.first_initial),
        birth_day=pseudonym(ud.birth_day),
        birth_month=pseudonym(ud.birth_month),
        birth_year=pseudonym(ud.birth_year),
        external_id=pseudonym(ud.external_id),
        lead_id=ud.lead_id,
        subscription_id=ud.subscription_id,
        fb_login_id=ud.fb_login_id,
        page_id=ud.page_id,
    )
    client = event.client.model_copy(update={"ip": truncate_ip(event.client.ip)})
    headers = {k: scrub_emails(v) if k == "referer" else v for k, v in event.headers.items()
               if k not in ("x-forwarded-for", "cookie", "x-real-ip")}  # fmt: skip
    # the explicit headers last: they also drop forwarding headers and cookies
    return event.model_copy(update={**_without_emails(event), "user_data": user_data, "client": client, "headers": headers})


def _without_emails(event: Event) -> dict:
    """model_copy updates that take emails out of the page context and custom parameters (none if clean)."""
    update: dict = {}
    page = event.page
    if _may_hold_email(page.url) or _may_hold_email(page.referrer) or _may_hold_email(page.title):
        update["page"] = page.model_copy(update={
            "url": scrub_emails(page.url), "referrer": scrub_emails(page.referrer), "title": scrub_emails(page.title)})
    for name in ("params", "user_properties"):
        values = getattr(event, name)
        if any(isinstance(v, str) and _may_hold_email(v) for v in values.values()):
            update[name] = {k: scrub_emails(v) if isinstance(v, str) else v for k, v in values.items()}
    if (referer := event.headers.get("referer")) and _may_hold_email(referer):
        update["headers"] = {**event.headers, "referer": scrub_emails(referer)}
    return update


def _may_hold_email(text: str | None) -> bool:
    return bool(text) and ("@" in text or "%40" in text)


def scrub_emails(text: str | None) -> str | None:
    """Emails out of a URL (?email=jane@example.com is a common leak); the rest of it is kept."""
    return EMAIL_RE.sub(REDACTED, text) if text else text


def _digits(phone: str | None) -> str | None:
    if phone is None:
        return None
    if HEX64_RE.match(phone.strip().lower()):
        return phone
    return "".join(ch for ch in phone if ch.isdigit()) or None


def _ipv6(m: re.Match) -> str:
    try:
        ipaddress.IPv6Address(m.group(0))
    except ValueError:
        return m.group(0)
    return REDACTED


def scrub_text(text: str) -> str:
    """Replace emails, phone-like digit runs and IPv4/IPv6 addresses in free text."""
    text = EMAIL_RE.sub(REDACTED, text)
    if ":" in text:
        text = IPV6_CANDIDATE_RE.sub(_ipv6, text)
    text = IPV4_RE.sub(REDACTED, text)
    return PHONE_RE.sub(REDACTED, text)
