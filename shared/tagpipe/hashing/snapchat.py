"""Snapchat Conversions API v3: user_data em ph fn ln ge ct st zp country external_id, SHA-256 hex.

[doc] https://developers.snap.com/api/marketing-api/Conversions-API/Parameters (User Data Parameters):
- em: "Trim any additional characters (such as spaces) and convert to lowercase before hashing"
  (Person@Example.com -> person@example.com -> 542d2401...). Same as Meta.
- ph: "including the country code, remove any double 0 in front of the country code. If the number itself
  begins with a 0, this should be removed. Also exclude any non-numeric characters such as whitespace,
  parentheses, '+', or '-'" (+44 844 412 4653 -> 448444124653). libphonenumber's E.164 without its '+' is
  exactly that; a number whose country code cannot be established is dropped (VENDORS §6.2).
- the other keys: the Parameters page says only "hashing required" for them [unverified in detail]; we send
  Meta's documented forms (tagpipe.hashing.meta_hash_doc: fn/ln lowercase, ge f/m, ct no spaces/punctuation,
  st/country codes, zp first 5 US digits), which is what Snap's pixel auto-matching mirrors [unverified].
Snap's partner template (stape-io/snapchat-tag template.js @b794160 hashData) hashes trim().toLowerCase() of
every key and skips ^[A-Fa-f0-9]{64}$: for em that is identical; for ph it hashes whatever it is given.
sc_click_id, sc_cookie1, client_ip_address and client_user_agent are never hashed (not handled here).
"""

from __future__ import annotations

from tagpipe.hashing._core import MAX_INPUT_CHARS, hash_or_none, hashed64
from tagpipe.hashing._phone import to_e164
from tagpipe.hashing.meta import meta_hash_doc

SNAPCHAT_FIELDS = frozenset({"em", "ph", "fn", "ln", "ge", "ct", "st", "zp", "country", "external_id"})


def snapchat_hash(field: str, value: str | None, *, default_country: str | None = None) -> str | None:
    """SHA-256 hex of the value normalised as Snap documents; a 64-hex value passes through lowercased."""
    if field not in SNAPCHAT_FIELDS:
        raise ValueError(f"unknown Snapchat user_data field {field!r}; expected one of {sorted(SNAPCHAT_FIELDS)}")
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS or not value.strip():
        return None
    if h := hashed64(value):
        return h
    if field == "em":
        v = value.strip().lower()
        return hash_or_none(v) if "@" in v else None
    if field == "ph":
        e164 = to_e164(value.strip(), default_country)
        return hash_or_none(e164[1:]) if e164 else None
    return meta_hash_doc(field, value, default_country=default_country)
