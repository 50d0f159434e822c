"""Pinterest Conversions API (v5 `ad_accounts/{id}/events`): user_data em ph fn ln ge db ct st zp country external_id.

Every key is a list of lowercase hex SHA-256. The rules, [doc] Pinterest's own generated API client
(pinterest/pinterest-python-generated-api-client docs/ConversionEventsUserData.md @1e4ee77, the events_create
schema):
- em: "Sha256 hashes of lowercase version of user's email addresses" (trimmed)
- ph: "only digits with country code, area code, and number. Remove any symbols, letters, spaces and leading
  zeros": E.164 without its '+' (a missing country code comes from default_country; a number whose country is
  unknown is dropped, VENDORS §6.2)
- ge: "in lowercase. Either "f" or "m" or "n" for non-binary" (female/male/non-binary are mapped)
- db: "date of birthday, given as year, month, and day": YYYYMMDD
- fn, ln: "in lowercase"; ct: "in lowercase, and without spaces or punctuation"
- st: "a two-letter code in lowercase" (US state names are mapped to their codes)
- zp: "only digits" (a postcode with letters, e.g. UK, is kept lowercase without spaces or punctuation:
  [unverified] what Pinterest wants for those)
- country: "two-character ISO-3166 country code ... in lowercase"
- external_id: no rule given; hashed trimmed and lowercased as Pinterest's partner template does ([code]
  stape-io/pinterest-tag template.js @a226d70 hashData: trim().toLowerCase() for every key)
A ^[A-Fa-f0-9]{64}$ value passes through lowercased (the template's isHashed). client_ip_address,
client_user_agent and click_id (the `_epik` cookie) are never hashed (not handled here).
"""

from __future__ import annotations

import re

from tagpipe.hashing._core import MAX_INPUT_CHARS, country_alpha2, hash_or_none, hashed64
from tagpipe.hashing._phone import to_e164
from tagpipe.hashing.meta import meta_normalize_doc

PINTEREST_FIELDS = frozenset({"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id"})
_NOT_WORD = re.compile(r"[\W_]+")  # spaces and punctuation (letters of any script stay)
_GENDERS = {"f": "f", "female": "f", "woman": "f", "m": "m", "male": "m", "man": "m", "n": "n", "non-binary": "n",
            "nonbinary": "n", "non binary": "n"}  # fmt: skip


def pinterest_normalize(field: str, value: str | None, *, default_country: str | None = None) -> str | None:
    """The string Pinterest wants hashed (or the lowercased hash if `value` already is a SHA-256)."""
    if field not in PINTEREST_FIELDS:
        raise ValueError(f"unknown Pinterest user_data field {field!r}; expected one of {sorted(PINTEREST_FIELDS)}")
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS:
        return None
    v = value.strip()
    if not v:
        return None
    if h := hashed64(v):
        return h
    v = v.lower()
    if field == "em":
        return v if "@" in v else None
    if field == "ph":
        e164 = to_e164(v, default_country)
        return e164[1:] if e164 else None
    if field == "ge":
        return _GENDERS.get(v)
    if field in ("db", "st"):
        return meta_normalize_doc(field, v, default_country=default_country)  # YYYYMMDD; US names -> codes
    if field in ("ct", "zp"):
        return _NOT_WORD.sub("", v) or None
    if field == "country":
        code = country_alpha2(v)
        return code.lower() if code else None
    return v


def pinterest_hash(field: str, value: str | None, *, default_country: str | None = None) -> str | None:
    """SHA-256 hex of the normalised value; a 64-hex value passes through lowercased; None to drop the key."""
    v = pinterest_normalize(field, value, default_country=default_country)
    if v is None or (isinstance(value, str) and hashed64(value)):
        return v
    return hash_or_none(v)
