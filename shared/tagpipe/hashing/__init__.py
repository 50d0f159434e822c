"""Vendor-exact normalisation and SHA-256 hashing of user data (the hot path of transform).

    sha256_hex(value)                                   lowercase hex SHA-256 of UTF-8
    looks_hashed(value, lengths=(64,))                  already a hex digest of one of these lengths?
    country_alpha2(value)                               'United States' / 'usa' / 'UK' -> 'US' / 'US' / 'GB'
    dedup(values)                                       order-stable de-duplication, drops None/''

    Meta CAPI        meta_normalize / meta_hash            SDK-exact (facebook-business 26.0.3), the default
                     meta_normalize_doc / meta_hash_doc    docs-style (gender f/m, YYYYMMDD, state/country names)
                     fields: em ph fn ln ge db ct st zp country external_id
    Google           google_normalize_email / _phone / _name / _street, google_hash(kind, …)
                     (email phone first_name last_name street), google_plain(kind, …) for the parts sent
                     in clear (city region postal_code country)
    TikTok           tiktok_normalize / tiktok_hash        (email phone external_id)

Contract shared by every function: a str in, a str or None out. None means "drop this key": empty,
whitespace-only or unusable input never raises and never hashes the empty string. A value that already is a
hex SHA-256 (either case; for Meta SDK-style also a 32-hex MD5, as the SDK does) passes through lowercased,
never re-hashed. An unknown field/kind name is a programming error and raises ValueError.

`default_country` (ISO alpha-2, or anything country_alpha2 understands) is only used for phone numbers:
a number without a country code gets the country's calling code (libphonenumber). Pass the shopper's
address country when known, else the site's configured default.

Module map: meta.py, google.py, tiktok.py (rules, each beside its source); _phone.py (E.164);
_core.py (SHA-256, hash detection, countries, the bounded phone-hash cache, see there for why it is safe);
_iso3166.py (generated country tables).
"""

from tagpipe.hashing._core import (
    clear_phone_cache,
    country_alpha2,
    dedup,
    looks_hashed,
    set_phone_cache_size,
    sha256_hex,
)
from tagpipe.hashing._phone import to_e164
from tagpipe.hashing.google import (
    GOOGLE_HASHED_KINDS,
    GOOGLE_PLAIN_KINDS,
    google_hash,
    google_normalize_email,
    google_normalize_name,
    google_normalize_phone,
    google_normalize_street,
    google_plain,
)
from tagpipe.hashing.meta import (
    META_FIELDS,
    meta_hash,
    meta_hash_doc,
    meta_normalize,
    meta_normalize_doc,
)
from tagpipe.hashing.tiktok import TIKTOK_KINDS, tiktok_hash, tiktok_normalize

__all__ = [
    "GOOGLE_HASHED_KINDS",
    "GOOGLE_PLAIN_KINDS",
    "META_FIELDS",
    "TIKTOK_KINDS",
    "clear_phone_cache",
    "country_alpha2",
    "dedup",
    "google_hash",
    "google_normalize_email",
    "google_normalize_name",
    "google_normalize_phone",
    "google_normalize_street",
    "google_plain",
    "looks_hashed",
    "meta_hash",
    "meta_hash_doc",
    "meta_normalize",
    "meta_normalize_doc",
    "set_phone_cache_size",
    "sha256_hex",
    "tiktok_hash",
    "tiktok_normalize",
    "to_e164",
]
