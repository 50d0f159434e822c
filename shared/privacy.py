"""PII handling: what may be stored or logged, and in what form.

Raw customer data (email, phone, names, street, IP) lives only in memory between parse and the
per-vendor hashing in transform. What is stored is pseudonymised: SHA-256 of the normalised value
(lowercase, trimmed), so `erase` can still find a user by email hash, and IPs are truncated.
Free text that may hold PII (failed payloads) is scrubbed by pattern, in the manner of Sentry's
PII scrubbing. Users can opt in to keeping raw PII (privacy.store_raw_pii).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from shared.models import Address, Event, UserData

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"(?<![\w.])(?:\+|%2B|00)?\d[\d\s().\-]{6,}\d(?![\w.])")
IPV4_RE = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
REDACTED = "[redacted]"


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


def truncate_ip(ip: str | None) -> str | None:
    """IPv4 keeps 3 octets, IPv6 keeps the /48 prefix: enough for geo, not for a person."""
    if not ip:
        return ip
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def redact_event(event: Event) -> Event:
    """The event as it may be stored: user data pseudonymised, IP truncated."""
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
        gender=pseudonym(ud.gender),
        date_of_birth=pseudonym(ud.date_of_birth),
        external_id=pseudonym(ud.external_id),
    )
    client = event.client.model_copy(update={"ip": truncate_ip(event.client.ip)})
    headers = {k: v for k, v in event.headers.items() if k not in ("x-forwarded-for", "cookie", "x-real-ip")}
    return event.model_copy(update={"user_data": user_data, "client": client, "headers": headers})


def _digits(phone: str | None) -> str | None:
    if phone is None:
        return None
    if HEX64_RE.match(phone.strip().lower()):
        return phone
    return "".join(ch for ch in phone if ch.isdigit()) or None


def scrub_text(text: str) -> str:
    """Replace emails, phone-like digit runs and IPv4 addresses in free text."""
    text = EMAIL_RE.sub(REDACTED, text)
    text = IPV4_RE.sub(REDACTED, text)
    return PHONE_RE.sub(REDACTED, text)
