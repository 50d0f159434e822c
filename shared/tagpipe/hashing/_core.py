"""Primitives shared by every vendor module: SHA-256, hash detection, country lookup, the phone-hash cache."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterable

from tagpipe.hashing._iso3166 import ALIASES, ALPHA2, ALPHA3_TO_ALPHA2, NAME_TO_ALPHA2, letters_key

# --------------------------------------------------------------------------- hashing

# Longer inputs are dropped (None) by every vendor function. No real email (RFC 5321: 254), phone, name or
# id is this long, and it bounds the regex work per value: the SDK's email pattern `.+@.+\..+` is quadratic
# on a long run of '@' (35 ms for 10,000 characters, seconds for 100,000).
MAX_INPUT_CHARS = 512


def sha256_hex(value: str) -> str:
    """Lowercase hex SHA-256 of the UTF-8 bytes of `value`.

    Every vendor wants exactly this: Meta ("hashed using SHA-256", SDK normalize.py hash_sha_256 =
    hashlib.sha256(input.encode('utf-8')).hexdigest()), Google ("hex" for the Ads API and GA4 MP,
    https://developers.google.com/analytics/devguides/collection/ga4/uid-data), TikTok (SHA-256 hex).
    Raises UnicodeEncodeError for a string with lone surrogates (as the SDK does); the vendor functions
    turn that into None.
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def hash_or_none(value: str) -> str | None:
    try:
        return hashlib.sha256(value.encode("utf-8")).hexdigest()
    except UnicodeEncodeError:  # lone surrogates (e.g. from JSON "\ud800"): not valid UTF-8, not hashable
        return None


_HEX_BY_LENGTH = {n: re.compile(rf"[0-9a-fA-F]{{{n}}}") for n in (32, 40, 64, 128)}


def looks_hashed(value: str | None, lengths: tuple[int, ...] = (64,)) -> bool:
    """True when `value`, trimmed, is exactly N hex digits (either case) for some N in `lengths`.

    (64,) = SHA-256, what Google, TikTok and Meta's own pixel treat as already hashed. Meta's SDK also lets
    MD5-length (32) values through (normalize.py is_already_hashed: md5_pattern | sha256_pattern); pass
    lengths=(32, 64) to ask the SDK's question.
    """
    if not isinstance(value, str):
        return False
    v = value.strip()
    n = len(v)
    if n not in lengths:
        return False
    pattern = _HEX_BY_LENGTH.get(n) or re.compile(rf"[0-9a-fA-F]{{{n}}}")
    return pattern.fullmatch(v) is not None


_HEX64 = _HEX_BY_LENGTH[64]


def hashed64(value: str) -> str | None:
    """The lowercased SHA-256 hex if `value` (trimmed) already is one, else None."""
    v = value.strip()
    if len(v) == 64 and _HEX64.fullmatch(v):
        return v.lower()
    return None


def dedup(values: Iterable[str | None]) -> list[str]:
    """Drop None/empty and repeats, keeping first-seen order.

    Meta's SDK de-duplicates user_data lists with list(set(...)) (user_data.py __dedup_list), so its order is
    not stable between runs; ours is, which keeps payloads and golden tests deterministic.
    """
    seen: dict[str, None] = {}
    for v in values:
        if v:
            seen.setdefault(v, None)
    return list(seen)


# --------------------------------------------------------------------------- countries


def country_alpha2(value: str | None) -> str | None:
    """'us', 'USA', 'United States', 'U.K.', 'Deutschland', 'Côte d'Ivoire' -> 'US' / 'GB' / 'DE' / 'CI'.

    ISO 3166-1 alpha-2, upper case, or None when the value names no assigned country. Accepts alpha-2,
    alpha-3, ISO English names (name, official and common), and the hand-kept aliases in _iso3166.ALIASES
    ('UK' -> 'GB': UK is ISO-*reserved* for the United Kingdom, not assigned, so a strict validator such as
    Meta's SDK rejects it).
    """
    if not isinstance(value, str):
        return None
    key = letters_key(value)
    if not key:
        return None
    alias = ALIASES.get(key)
    if alias:
        return alias
    upper = key.upper()
    if len(key) == 2:
        return upper if upper in ALPHA2 else None
    if len(key) == 3 and upper in ALPHA3_TO_ALPHA2:
        return ALPHA3_TO_ALPHA2[upper]
    return NAME_TO_ALPHA2.get(key)


# --------------------------------------------------------------------------- the phone-hash cache
#
# Parsing a phone number with libphonenumber costs ~15-30 µs, ten times the rest of a hash, and the same
# shopper's number is hashed again for every event and every destination. So the *phone* paths keep a small
# bounded cache. What it holds, and why that is acceptable for PII:
#   key   = BLAKE2b-128 keyed with a random per-process secret, over (vendor tag, region, raw input). The raw
#           number is never stored; without the secret (which never leaves this process) a key cannot be
#           tested against guessed numbers.
#   value = the vendor hash we are about to send anyway (or "" for "unusable"): no more sensitive than the
#           outgoing payload itself.
# Bounded at PHONE_CACHE_SIZE entries; when full it is cleared (no LRU bookkeeping on the hot path). Set the
# size to 0 to disable it. Nothing else is cached: emails and names normalise in ~1-2 µs with precompiled
# regexes, less than a cache lookup would save, and caching them would only add PII-derived state.

PHONE_CACHE_SIZE = 4096
_cache_secret = os.urandom(32)
_cache: dict[bytes, str] = {}
_cache_lock = threading.Lock()


def set_phone_cache_size(size: int) -> None:
    """Change the phone-hash cache bound (0 disables it); clears the cache."""
    global PHONE_CACHE_SIZE
    with _cache_lock:
        PHONE_CACHE_SIZE = max(0, int(size))
        _cache.clear()


def clear_phone_cache() -> None:
    with _cache_lock:
        _cache.clear()


def cache_key(tag: str, region: str | None, value: str) -> bytes:
    h = hashlib.blake2b(key=_cache_secret, digest_size=16)
    h.update(tag.encode())
    h.update(b"\x00")
    h.update((region or "").encode())
    h.update(b"\x00")
    h.update(value.encode("utf-8", "surrogatepass"))
    return h.digest()


def cache_get(key: bytes) -> str | None:
    return _cache.get(key)


def cache_put(key: bytes, result: str | None) -> None:
    if PHONE_CACHE_SIZE <= 0:
        return
    if len(_cache) >= PHONE_CACHE_SIZE:
        with _cache_lock:
            if len(_cache) >= PHONE_CACHE_SIZE:
                _cache.clear()
    _cache[key] = result or ""
