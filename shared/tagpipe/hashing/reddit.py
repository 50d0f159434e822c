"""Reddit Conversions API v3 (`pixels/{id}/conversion_events`): user.email, user.phone_number, user.external_id.

Reddit matches on these hashed with SHA-256 [unverified: Reddit's v3 reference (ads-api.reddit.com/docs/v3) was
not readable this session]. Its partner template sends email, phone and external id as given ([code]
stape-io/reddit-tag template.js @ca26b67 addUserData), i.e. Reddit accepts plain values and hashes them itself;
tagpipe never sends raw PII to an ad platform, so it sends the SHA-256 of the normalised value, the form
Reddit's Pixel advanced matching uses: email trimmed and lowercased, phone in E.164 with '+' [unverified],
external_id trimmed. A value that already is a SHA-256 hex passes through lowercased. ip_address, user_agent,
uuid (the `_rdt_uuid` cookie) and click_id are sent as they are.
"""

from __future__ import annotations

from tagpipe.hashing._core import MAX_INPUT_CHARS, hash_or_none, hashed64
from tagpipe.hashing._phone import to_e164

REDDIT_KINDS = frozenset({"email", "phone", "external_id"})


def reddit_hash(kind: str, value: str | None, *, default_country: str | None = None) -> str | None:
    if kind not in REDDIT_KINDS:
        raise ValueError(f"unknown Reddit kind {kind!r}; expected one of {sorted(REDDIT_KINDS)}")
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS or not value.strip():
        return None
    if h := hashed64(value):
        return h
    v: str | None = value.strip()
    if kind == "email":
        v = v.lower() if "@" in v else None
    elif kind == "phone":
        v = to_e164(v, default_country)
    return hash_or_none(v) if v else None
