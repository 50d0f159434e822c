"""TikTok Events API 2.0 (`/open_api/v1.3/event/track/`): user.email, user.phone, user.external_id.

All three are SHA-256 hex. Sources: TikTok's official sGTM template (tiktok/gtm-template-eapi template.tpl
@089e34e, VENDORS §5) lowercases+trims email and phone, trims external_id, and skips values matching
^[A-Fa-f0-9]{64}$. TikTok documents the phone as E.164 with '+' ([unverified] in VENDORS §5; Segment's TikTok
Conversions integration, segmentio/action-destinations tiktok-conversions/formatter.ts, formats '+<digits>'),
while the template hashes whatever it is given: we send real E.164 and drop a number whose country code
cannot be established. ttclid, ttp, ip and user_agent are never hashed (not handled here).
"""

from __future__ import annotations

from tagpipe.hashing._core import MAX_INPUT_CHARS, cache_get, cache_key, cache_put, hash_or_none, hashed64
from tagpipe.hashing._phone import region_code, to_e164

TIKTOK_KINDS = frozenset({"email", "phone", "external_id"})


def tiktok_normalize(kind: str, value: str | None, *, default_country: str | None = None) -> str | None:
    """The string TikTok wants hashed (or the lowercased hash if `value` already is a SHA-256)."""
    if kind not in TIKTOK_KINDS:
        raise ValueError(f"unknown TikTok kind {kind!r}; expected one of {sorted(TIKTOK_KINDS)}")
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS:
        return None
    v = value.strip()  # template: trim (all three)
    if not v:
        return None
    h = hashed64(v)
    if h:
        return h
    if kind == "email":
        v = v.lower()  # template: toLowerCase. No gmail dot/plus rule: that is Google's alone (VENDORS §6.3)
        return v if "@" in v else None
    if kind == "phone":
        return to_e164(v, default_country)
    return v  # external_id: trim only (template); case kept


def tiktok_hash(kind: str, value: str | None, *, default_country: str | None = None) -> str | None:
    """SHA-256 hex for email | phone | external_id; a 64-hex value passes through lowercased; None to drop."""
    if kind == "phone" and isinstance(value, str) and value:
        region = region_code(default_country)
        key = cache_key("tiktok.phone", region, value)
        hit = cache_get(key)
        if hit is not None:
            return hit or None
        out = _hash(kind, value, region)
        cache_put(key, out)
        return out
    return _hash(kind, value, default_country)


def _hash(kind: str, value: str | None, default_country: str | None) -> str | None:
    if not isinstance(value, str) or hashed64(value):
        return tiktok_normalize(kind, value, default_country=default_country)
    v = tiktok_normalize(kind, value, default_country=default_country)
    return hash_or_none(v) if v else None
