"""Microsoft Advertising UET Conversions API: userData.em, userData.ph, userData.externalId, SHA-256 hex.

Sources: [doc] https://learn.microsoft.com/en-us/advertising/guides/uet-conversion-api-integration (userData:
email, phone and external id hashed with SHA-256; the normalisation table was not in the excerpts read this
session, so the rules below are [code] Microsoft's listed sGTM partner template, stape-io/microsoft-capi-tag
template.js @285d013 normalizeUserData + hashData):
- em: trim + lowercase, then every '.' and the '+suffix' removed from the local part, for ALL domains
  (jane.doe+shop@example.com -> janedoe@example.com). This differs from Meta (keeps both) and Google (gmail
  only, VENDORS §6.3): it is what the template sends in production, and UET's own tag [unverified] does the same.
- ph: the template removes spaces, '-', '(', ')' and keeps a '+': we send E.164 with '+' (+16505551234) and
  drop a number whose country code is unknown [unverified that Microsoft wants the '+'].
- externalId: trimmed (the template lowercases it with the rest; we keep its case as TikTok does) [unverified].
A ^[A-Fa-f0-9]{64}$ value passes through lowercased. msclkid, anonymousId, clientIpAddress and clientUserAgent
are never hashed.
"""

from __future__ import annotations

from tagpipe.hashing._core import MAX_INPUT_CHARS, hash_or_none, hashed64
from tagpipe.hashing._phone import to_e164

MICROSOFT_KINDS = frozenset({"email", "phone", "external_id"})


def microsoft_normalize_email(value: str) -> str | None:
    v = value.strip().lower()
    local, at, domain = v.rpartition("@")
    if not at or not local or not domain:
        return None
    local = local.split("+", 1)[0].replace(".", "")
    return f"{local}@{domain}" if local else None


def microsoft_hash(kind: str, value: str | None, *, default_country: str | None = None) -> str | None:
    if kind not in MICROSOFT_KINDS:
        raise ValueError(f"unknown Microsoft kind {kind!r}; expected one of {sorted(MICROSOFT_KINDS)}")
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS or not value.strip():
        return None
    if h := hashed64(value):
        return h
    if kind == "email":
        v = microsoft_normalize_email(value)
    elif kind == "phone":
        v = to_e164(value.strip(), default_country)
    else:
        v = value.strip()
    return hash_or_none(v) if v else None
