"""Google: Ads API enhanced conversions, GA4 Measurement Protocol user_data, Data Manager API.

One rule set serves all three: GA4 MP "is using the same normalization and hashing algorithm as the Google
Ads API Enhanced Measurement feature" (https://developers.google.com/analytics/devguides/collection/ga4/uid-data),
and the Data Manager formatting guide is the newest, most explicit statement of it
(https://developers.google.com/data-manager/api/devguides/concepts/formatting). Sources beside each rule.

Checked against Google's own normaliser, google-ads-datamanager-util 0.4.0 (`Formatter`, format.py), in
tests/hashing/test_google.py. Where we differ, on purpose:
  - email with inner whitespace: the util raises; the guide says "trim leading, trailing and intermediate
    whitespace", so we remove it.
  - phone: the util only strips non-digits and prefixes '+' ('(800)555-0100' -> '+8005550100', a wrong
    country); we build real E.164 with libphonenumber and a default country, as the guide's own example
    ('(800)555-0100' -> '+18005550100') requires, and return None rather than guess a country code.
  - given/family name: the util only trims and lowercases; GA4 uid-data says "remove digits and symbol
    characters" and the Data Manager AddressInfo reference "no punctuation", so "O'Brien" -> "obrien".
  - text is NFC-normalised first (a decomposed 'é' from macOS input hashes like the composed one), combining
    marks are kept (the util's [^\\w\\s] would delete Devanagari vowel signs), and runs of whitespace become
    one space.
"""

from __future__ import annotations

import re
import unicodedata

from tagpipe.hashing._core import (
    MAX_INPUT_CHARS,
    cache_get,
    cache_key,
    cache_put,
    country_alpha2,
    hash_or_none,
    hashed64,
)
from tagpipe.hashing._phone import region_code, to_e164

GOOGLE_HASHED_KINDS = frozenset({"email", "phone", "first_name", "last_name", "street"})
GOOGLE_PLAIN_KINDS = frozenset({"city", "region", "postal_code", "country"})

_WS = re.compile(r"\s+")
_ASCII_NOT_LETTER = re.compile(r"[^a-z\s]+")  # after lower(): ASCII fast path for names / city / region
_ASCII_NOT_ALNUM = re.compile(r"[^a-z0-9\s]+")  # after lower(): ASCII fast path for street
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_US_ZIP = re.compile(r"^([0-9]{5})(?:[\s-]?[0-9]{4})?$")
_ISO_3166_2 = re.compile(r"^\s*[A-Za-z]{2}\s*-\s*([A-Za-z0-9]{1,3})\s*$")

# Data Manager guide: given_name "Don't include prefixes such as Mrs.", family_name "Don't include suffixes
# such as Jr.". Removed only as a whole word at the start / end, and only when a name remains.
_NAME_PREFIXES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof"})
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq"})


def _letters(value: str, *, digits: bool) -> str:
    """NFC, lower case, keep letters + combining marks (+ decimal digits if `digits`) + single spaces."""
    v = value.lower()
    if v.isascii():
        v = (_ASCII_NOT_ALNUM if digits else _ASCII_NOT_LETTER).sub("", v)
    else:
        v = unicodedata.normalize("NFC", value).lower()
        cat = unicodedata.category
        v = "".join(c for c in v if c.isspace() or cat(c)[0] in "LM" or (digits and cat(c) == "Nd"))
    return _WS.sub(" ", v).strip()


# --------------------------------------------------------------------------- hashed kinds


def google_normalize_email(value: str | None) -> str | None:
    """Data Manager guide, email_address: lower case; "Trim leading, trailing, and intermediate whitespace";
    for gmail.com / googlemail.com only, remove every '.' before '@' and a '+' with everything after it
    ('cloudy.sanfrancisco+shopping@gmail.com' -> 'cloudysanfrancisco@gmail.com'); other domains keep dots
    and plus ('user.name+NYC@Example.com' -> 'user.name+nyc@example.com'). The domain is never rewritten
    (googlemail.com stays). Shape check as in the util (format_email_address): exactly one '@', non-empty
    local part and domain. NB googleads/google-ads-python's sample now strips '.' and '+' for *every*
    domain (VENDORS §4.3): that contradicts the guide and is not followed here."""
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS:
        return None
    v = _WS.sub("", value).lower()
    local, at, domain = v.partition("@")
    if not at or not local or not domain or "@" in domain:
        return None
    if domain in _GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def google_normalize_phone(value: str | None, default_country: str | None = None) -> str | None:
    """E.164 with '+' (Data Manager guide: "Use the E.164 format. Include the plus sign (+) and the country
    code. All characters after the plus sign must be digits"; GA4 uid-data: "Remove all non-digit
    characters, Add + prefix"). A national number needs `default_country` (ISO alpha-2, or a country name);
    without one, a number that is not in international form gives None (see _phone.to_e164)."""
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS:
        return None
    return to_e164(value, default_country)


def google_normalize_name(value: str | None) -> str | None:
    """First or last name.

    GA4 uid-data, sha256_first_name / sha256_last_name: "Remove digits and symbol characters; Lowercase;
    Remove leading and trailing spaces". Data Manager AddressInfo reference (givenName / familyName): "all
    lowercase, with no punctuation, no leading or trailing whitespace"; formatting guide: no prefixes (Mrs.)
    or suffixes (Jr.). Ads API OfflineUserAddressInfo.hashed_first_name: "Remove any extra spaces before,
    after, and in between" (so inner runs collapse to one space; 'Mary Ann' keeps its space);
    hashed_last_name: "lower case only and no punctuation".
    Hyphens and apostrophes are symbols: "Jean-Luc" -> "jeanluc", "O'Brien" -> "obrien". Letters of any
    script stay ("Zoë" -> "zoë", "Müller" -> "müller", "李" -> "李"); digits go.
    """
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS:
        return None
    v = _letters(value, digits=False)
    if not v:
        return None
    words = v.split(" ")
    while len(words) > 1 and words[0] in _NAME_PREFIXES:
        words.pop(0)
    while len(words) > 1 and words[-1] in _NAME_SUFFIXES:
        words.pop()
    return " ".join(words)


def google_normalize_street(value: str | None) -> str | None:
    """GA4 uid-data sha256_street: "Remove symbol characters; Lowercase; Remove leading and trailing spaces"
    (digits stay: '1600 Amphitheatre Pkwy.' -> '1600 amphitheatre pkwy'). Data Manager AddressInfo
    addressLine says the same; the util's format_address_line removes [^\\w\\s]|_ ."""
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS:
        return None
    return _letters(value, digits=True) or None


_NORMALIZERS = {
    "email": google_normalize_email,
    "first_name": google_normalize_name,
    "last_name": google_normalize_name,
    "street": google_normalize_street,
}


def google_hash(kind: str, value: str | None, *, default_country: str | None = None) -> str | None:
    """SHA-256 hex of the normalised value; a 64-hex value passes through lowercased; None to drop it.

    kind: email | phone | first_name | last_name | street. Hex, as the Ads API and GA4 MP require (Data
    Manager also takes base64; we always send hex)."""
    if kind not in GOOGLE_HASHED_KINDS:
        raise ValueError(
            f"unknown Google hashed kind {kind!r}; expected one of {sorted(GOOGLE_HASHED_KINDS)}"
        )
    if not isinstance(value, str) or not value or len(value) > MAX_INPUT_CHARS:
        return None
    h = hashed64(value)
    if h:
        return h
    if kind == "phone":
        region = region_code(default_country)
        key = cache_key("google.phone", region, value)
        hit = cache_get(key)
        if hit is not None:
            return hit or None
        e164 = to_e164(value, region)
        out = hash_or_none(e164) if e164 else None
        cache_put(key, out)
        return out
    v = _NORMALIZERS[kind](value)
    return hash_or_none(v) if v else None


# --------------------------------------------------------------------------- plain (never hashed) kinds


def _postal_code(value: str, country: str | None) -> str | None:
    """Data Manager guide, postal_code (VENDORS §4.3): US "5 digits or 5+4"; other countries without the
    postal-code extension. We send a US ZIP as its 5 digits (valid on every Google surface, and one canonical
    form per shopper), recognised by shape when no country is known. Anything else is only trimmed, as the
    util's format_postal_code does: UK 'SW1A 1AA', PT '1234-567' and CA 'K1A 0B1' are whole codes, not
    code + extension."""
    v = value.strip()
    if not v:
        return None
    region = country_alpha2(country) if country else None
    if region in (None, "US"):
        m = _US_ZIP.match(v)
        if m:
            return m.group(1)
    return v


def google_plain(kind: str, value: str | None, *, country: str | None = None) -> str | None:
    """The address parts Google wants *not* hashed: city, region, postal_code, country.

    "Do not hash: country, state, city, postal code" (Ads API enhanced conversions, upload-online; GA4 uid-data
    sends them as plain `city`, `region`, `postal_code`, `country`).
      city: GA4 uid-data user_data.address[].city "Remove digits and symbol characters; Lowercase; Remove
        leading and trailing spaces" ('New York' -> 'new york', 'Zürich' -> 'zürich'); Data Manager
        AddressInfo.city: "remove symbol characters, lowercase, trim".
      region: the same rule ([unverified]: the region row of the uid-data page was not in the excerpt read;
        the Data Manager administrativeArea rule is the same as for city); a region given as ISO 3166-2
        ('US-CA') keeps its subdivision part ('ca'). US state names are not mapped to codes: Google documents
        no such step.
      postal_code: see _postal_code; `country` (any form country_alpha2 accepts) tells whether the US rule
        applies.
      country: ISO 3166-1 alpha-2 in upper case ('United States', 'usa', 'uk' -> 'US', 'US', 'GB'); the
        Ads API country_code, GA4 `country` and the Data Manager region_code are all alpha-2, and the util
        upper-cases it (format_region_code).
    """
    if kind not in GOOGLE_PLAIN_KINDS:
        raise ValueError(f"unknown Google plain kind {kind!r}; expected one of {sorted(GOOGLE_PLAIN_KINDS)}")
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS:
        return None
    if kind == "country":
        return country_alpha2(value)
    if kind == "postal_code":
        return _postal_code(value, country)
    if kind == "region":
        m = _ISO_3166_2.match(value)
        if m:
            return m.group(1).lower()
    return _letters(value, digits=False) or None
