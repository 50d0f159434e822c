"""Meta Conversions API user_data: normalisation and hashing.

Two styles, chosen per destination by config (`[destinations.<id>] hashing = "sdk" | "docs"`, MetaSettings):

  SDK-style (default) `meta_normalize` / `meta_hash`
      Byte-for-byte what facebook-business 26.0.3 does (facebook_business/adobjects/serverside/normalize.py
      Normalize.normalize + user_data.py), field by field, with four documented departures:
        1. where the SDK raises (TypeError for a bad em/country, ValueError for a bad ph, UnicodeEncodeError
           for lone surrogates) we return None, so the caller drops the key instead of failing the event;
        2. where the SDK hashes the *empty string* (a whitespace-only fn/ln/ge/db/ct/st/zp, or a zp like
           '-123') we return None: sha256('') matches nobody and only adds noise;
        3. `external_id`, which the SDK sends unhashed, is hashed (policy below);
        4. `ph` with default_country: a number without a country code gets one (libphonenumber). With
           default_country=None `ph` is exactly the SDK;
        5. inputs longer than 512 characters return None (_core.MAX_INPUT_CHARS).
      tests/hashing/test_meta_sdk.py runs the installed SDK on every fixture and asserts all of this.

  Docs-style (opt-in) `meta_normalize_doc` / `meta_hash_doc`
      The rules on Meta's customer-information-parameters page
      (https://developers.facebook.com/documentation/ads-commerce/conversions-api/parameters/customer-information-parameters;
      the per-key table is [unverified] in VENDORS.md §1.3), implemented where the page is silent the way
      Meta's own Parameter Builder library does (facebook/capi-param-builder, piiUtil/*.js, which mirrors the
      pixel's fbevents.js PII schema). It maps gender words to f/m, dates to YYYYMMDD, US state names to
      codes, country names to alpha-2, and strips name punctuation. It yields *different hashes* from the
      SDK for those inputs (VENDORS §6.11), which is the point: pick the style your pixel matches.

Where the SDK and the docs disagree (VENDORS.md §1.3 and §6.11; [sdk] = normalize.py / user_data.py,
[doc] = the page above, [pb] = capi-param-builder piiUtil):
  field    SDK-style [sdk]                                      docs-style [doc]/[pb]
  em       lower+strip; must match .+@.+\\..+                    same
  ph       drop [\\s\\-()] and ^\\+?0{0,2} (twice); '.' rejected;  digits with country code, no leading zeros
           no country code added; '(0)' keeps its 0               (libphonenumber; '.' and '(0)' handled)
  fn ln    lower+strip ("o'brien", "jean-luc", "mary ann")        no punctuation, no spaces [pb]
  ge       lower+strip ('Male' -> 'male')                       'f' / 'm'
  db       lower+strip (no reformatting)                        YYYYMMDD
  ct       drop [0-9.\\s\\-()]; "'" and accents stay              a-z0-9 only [pb]
  st       as ct; names not mapped ('california')               US/CA names -> 2-letter code
  zp       drop whitespace, cut at the first '-'                same, + dash-less US ZIP+4 -> 5 digits
  country  keep a-z; must be ISO alpha-2 ('UK', 'USA' -> None)  names, alpha-3, 'UK' -> alpha-2
  external_id  sent unhashed                                    "hashing recommended"

external_id policy (both styles): hashed, like Meta's docs recommend and like TikTok (a destination with
`hash_external_id = false` sends it as given instead, the SDK's way, for a pixel that does the same); normalised the way
Meta's pixel / Parameter Builder does it (getNormalizedExternalID: lower case, all whitespace removed) so the
server hash equals the hash the browser pixel sends for the same `external_id`. Only a 64-hex value counts as
already hashed here, not a 32-hex one: a 32-hex external_id is usually a raw UUID (uuid4().hex), which the
pixel would hash (its looksLikeHashed is SHA-256-only), so we must too.
"""

from __future__ import annotations

import datetime as _dt
import re

from tagpipe.hashing._core import (
    MAX_INPUT_CHARS,
    cache_get,
    cache_key,
    cache_put,
    country_alpha2,
    hash_or_none,
    hashed64,
)
from tagpipe.hashing._iso3166 import ALPHA2, US_STATES_AND_CA_PROVINCES
from tagpipe.hashing._phone import region_code, to_e164

META_FIELDS = frozenset(
    {"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id",
     "f5first", "f5last", "fi", "dobd", "dobm", "doby"}
)  # fmt: skip

# ---- facebook_business/adobjects/serverside/normalize.py (26.0.3), the same patterns verbatim ----------------
_SDK_LOCATION_EXCLUDED = re.compile(r"[0-9.\s\-()]")  # location_excluded_chars: ct and st
_SDK_NOT_A_Z = re.compile(r"[^a-z]")  # isocode_included_chars: country
_SDK_EMAIL = re.compile(r".+@.+\..+")  # email_pattern (re.match; '.' does not cross a newline)
# md5_pattern | sha256_pattern (Normalize.is_already_hashed)
_SDK_HASHED = re.compile(r"^(?:[a-f0-9]{32}|[a-f0-9]{64})$")
_SDK_WS = re.compile(r"\s")  # zp: re.sub(r"\s", "", ...)
_SDK_PH_DROP = re.compile(r"[\s\-()]")  # ph: "Remove spaces and parenthesis"
_SDK_PH_PREFIX = re.compile(r"^\+?0{0,2}")  # ph: "Removes the starting + and leading two 0's" (applied twice)
_SDK_PH_INTL = re.compile(r"^\d{1,4}\(?\d{2,3}\)?\d{4,}$")  # get_international_number (\d is Unicode here)
_SDK_YEAR = re.compile(r"^[0-9]{4}$")  # year_pattern: doby


_PARTIAL_FIELDS = frozenset({"f5first", "f5last", "fi", "dobd", "dobm", "doby"})


def _check_field(field: str) -> None:
    if field not in META_FIELDS:
        raise ValueError(f"unknown Meta user_data field {field!r}; expected one of {sorted(META_FIELDS)}")


def _external_id(value: str) -> tuple[str | None, bool]:
    """Policy above. Meta capi-param-builder stringUtil.js getNormalizedExternalID: lowercase, strip
    'whitespace_only' (every whitespace character)."""
    h = hashed64(value)
    if h:
        return h, True
    v = _SDK_WS.sub("", value).lower()
    return (v or None), False


def _sdk(field: str, value: str) -> tuple[str | None, bool]:
    """(normalised, already_hashed) exactly as Normalize.normalize(field, value, hash_field=False)."""
    v = value.lower().strip()  # normalize.py: normalized_data = data.lower().strip()
    if _SDK_HASHED.match(v):  # 32 or 64 lowercase hex after lower+strip: returned as is, not re-hashed
        return v, True
    if field == "em":
        if not _SDK_EMAIL.match(v):  # SDK: TypeError('Invalid email format ...')
            return None, False
    elif field == "ct" or field == "st":
        v = _SDK_LOCATION_EXCLUDED.sub("", v)  # digits, '.', whitespace, '-', '(' ')' removed; "'" stays
    elif field == "zp":
        v = _SDK_WS.sub("", v).split("-")[0]  # '94025-1234' -> '94025'; '1234-567' (PT) -> '1234'
    elif field == "country":
        v = _SDK_NOT_A_Z.sub("", v)
        if v.upper() not in ALPHA2:  # SDK: pycountry alpha_2 lookup, else TypeError ('uk', 'usa' rejected)
            return None, False
    elif field == "ph":
        v = _SDK_PH_DROP.sub("", v)  # NB: '.' is NOT removed, so '650.555.1234' is rejected
        v = _SDK_PH_PREFIX.sub("", v)
        v = _SDK_PH_PREFIX.sub("", v)  # get_international_number strips the same prefix again
        if v.startswith("0") or not _SDK_PH_INTL.match(v):  # SDK: ValueError('Invalid format for phone ...')
            return None, False
    elif field == "f5first" or field == "f5last":
        v = v[:5]
    elif field == "fi":
        v = v[:1]
    elif field == "dobd" or field == "dobm":
        v = "0" + v if len(v) == 1 else v  # SDK: one digit gets a leading 0, then int() in 1..31 / 1..12
        try:
            n = int(v)
        except ValueError:
            return None, False
        if not 1 <= n <= (31 if field == "dobd" else 12):
            return None, False
    elif field == "doby":
        if not _SDK_YEAR.match(v):  # SDK: ValueError("Year should be specified in 'YYYY' format")
            return None, False
    # fn ln ge db: lower+strip only (no punctuation removal, no gender/date mapping in the SDK)
    return (v or None), False  # departure 2: the SDK would hash '' here


def _meta_phone_with_country(value: str, default_country: str) -> str | None:
    """Departure 4: digits of E.164 without '+' (Meta: 'digits only, including country code')."""
    e164 = to_e164(value, default_country)
    return e164[1:] if e164 else None


def _normalize(field: str, value: str | None, default_country: str | None) -> tuple[str | None, bool]:
    _check_field(field)
    if not isinstance(value, str) or not value:  # SDK: `if data is None or len(data) == 0: return None`
        return None, False
    if len(value) > MAX_INPUT_CHARS:  # departure 5: see _core.MAX_INPUT_CHARS
        return None, False
    if field == "external_id":
        return _external_id(value)
    if field == "ph" and default_country and region_code(default_country):
        v = value.lower().strip()
        if _SDK_HASHED.match(v):
            return v, True
        n = _meta_phone_with_country(value, default_country)
        if n:
            return n, False
        # libphonenumber could not place it: fall back to exactly what the SDK does
    return _sdk(field, value)


def meta_normalize(field: str, value: str | None, *, default_country: str | None = None) -> str | None:
    """The normalised string the SDK would hash (or the lowercased hash, if `value` already is one)."""
    return _normalize(field, value, default_country)[0]


def meta_hash(field: str, value: str | None, *, default_country: str | None = None) -> str | None:
    """SHA-256 hex of meta_normalize(...), an already-hashed value lowercased, or None to drop the key."""
    if field == "ph" and default_country and isinstance(value, str) and value:
        key = cache_key("meta.ph", default_country, value)
        hit = cache_get(key)
        if hit is not None:
            return hit or None
        out = _hash(field, value, default_country)
        cache_put(key, out)
        return out
    return _hash(field, value, default_country)


def _hash(field: str, value: str | None, default_country: str | None) -> str | None:
    v, hashed = _normalize(field, value, default_country)
    if v is None or hashed:
        return v
    return hash_or_none(v)


# =========================================================================== docs-style (opt-in)

# Meta capi-param-builder commonUtil.js STRIP_WHITESPACE_AND_PUNCTUATION_REGEX (fn, ln): ASCII punctuation
# and whitespace go; letters with diacritics and non-Latin scripts stay ('Zoë' -> 'zoë', '李' -> '李').
_DOC_NAME_STRIP = re.compile(r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~\s]+""")
# capi-param-builder STRIP_NON_LATIN_ALPHA_NUMERIC_REGEX = /[^a-zA-Z0-9]+/g (ct, st), test /^[a-z]+/ (ct).
# Doc: "lowercase only with no punctuation, no special characters, and no spaces". Note this *drops*
# accented letters ('São Paulo' -> 'sopaulo'), as Meta's pixel does.
_DOC_NON_LATIN_ALNUM = re.compile(r"[^a-zA-Z0-9]+")
_DOC_NON_DIGIT = re.compile(r"[^0-9]+")
_DOC_ISO_3166_2 = re.compile(r"^\s*[A-Za-z]{2}\s*-\s*([A-Za-z0-9]{1,3})\s*$")  # 'US-CA', 'CA-ON'
_DOC_LEADING_ZEROS = re.compile(r"^0+")
_US_ZIP9 = re.compile(r"^[0-9]{9}$")

# Meta capi-param-builder genderUtil.js MALE_SET / FEMALE_SET (the common words; doc: "f" / "m").
_GENDER = {
    **dict.fromkeys(("m", "male", "man", "boy", "mr", "mister", "masculine", "he", "him"), "m"),
    **dict.fromkeys(("f", "female", "woman", "girl", "mrs", "ms", "miss", "feminine", "she", "her"), "f"),
}


def _doc_gender(v: str) -> str | None:
    return _GENDER.get(v.strip().lower())


# Regions that write dates month-first (for the ambiguous 01/02/1990 case only).
_MONTH_FIRST = frozenset({"US", "CA", "PH", "FM", "MH", "PW", "BZ", "GU", "PR", "VI", "AS", "MP", "UM"})


def _doc_date(v: str, default_country: str | None = None) -> str | None:
    """YYYYMMDD (doc: "YYYYMMDD"). Heuristic of capi-param-builder dobUtil.js parseDateOfBirth: the first
    three digit groups; a group > 31 is the year; of the other two, one > 12 is the day, otherwise the
    first is the month (US order: '01/02/1990' = 2 January). A single 8-digit group is read as YYYYMMDD.
    Unlike dobUtil we check the calendar (no 31 February), reject 2-digit years, and read the ambiguous
    D/M case day-first when default_country is given and writes dates day-first (GB, DE, FR, ...)."""
    region = region_code(default_country) if default_country else None
    day_first = region is not None and region not in _MONTH_FIRST
    groups = _DOC_NON_DIGIT.sub(" ", v).split()
    if len(groups) == 1 and len(groups[0]) == 8:
        g = groups[0]
        y, m, d = int(g[:4]), int(g[4:6]), int(g[6:])
    elif len(groups) >= 3:
        n1, n2, n3 = (int(x) for x in groups[:3])
        if n1 > 31:
            y, m, d = (n1, n3, n2) if n2 > 12 else (n1, n2, n3)
        elif n2 > 31:
            y, m, d = (n2, n1, n3) if n3 > 12 else (n2, n3, n1)
        else:
            y, m, d = (n3, n2, n1) if (n1 > 12 or (day_first and n2 <= 12)) else (n3, n1, n2)
    else:
        return None
    if not 1800 <= y <= _dt.date.today().year + 1:  # dobUtil.js isValidDate: 1800 .. current year + 1
        return None
    try:
        _dt.date(y, m, d)
    except ValueError:
        return None
    return f"{y:04d}{m:02d}{d:02d}"


def _doc_state(v: str) -> str | None:
    """Doc: "Use the 2-character ANSI abbreviation code in lowercase. Normalize states outside the United
    States in lowercase with no punctuation, no special characters, and no spaces." US (and, as in
    capi-param-builder STATE_MAPPINGS, Canadian) names map to codes; 'US-CA' style ISO 3166-2 codes keep the
    subdivision part. Unlike the pixel / Parameter Builder we do not truncate other regions to 2 characters
    ('Bavaria' stays 'bavaria', not 'ba'), because the doc text says not to."""
    m = _DOC_ISO_3166_2.match(v)
    if m:
        v = m.group(1)
    key = _SDK_NOT_A_Z.sub("", v.lower())
    if len(key) == 2:
        return key
    code = US_STATES_AND_CA_PROVINCES.get(key)
    if code:
        return code
    out = _DOC_NON_LATIN_ALNUM.sub("", v).lower()
    return out or None


def _doc_zip(v: str, default_country: str | None) -> str | None:
    """Doc: "lowercase with no spaces and no dash. Use only the first 5 digits for U.S. zip codes."
    capi-param-builder zipCodeUtil.js: lower, text before the first '-', at least 2 characters. We also drop
    inner spaces (doc) and cut a dash-less US ZIP+4 ('940251234') to 5 digits when the country is US or
    unknown. The UK "area, district, and sector" rule is not applied (neither Meta library applies it)."""
    z = _SDK_WS.sub("", v.lower()).split("-")[0]
    if _US_ZIP9.match(z) and (default_country is None or region_code(default_country) == "US"):
        z = z[:5]
    return z if len(z) >= 2 else None


def _doc_phone(v: str, default_country: str | None) -> str | None:
    """Doc: "Remove symbols, letters, and any leading zeros. Phone numbers must include a country code".
    libphonenumber first (adds the country code, drops a '(0)' trunk digit); otherwise digits only without
    leading zeros, 7-15 digits (E.164 has at most 15)."""
    e164 = to_e164(v, default_country)
    if e164:
        return e164[1:]
    d = _DOC_LEADING_ZEROS.sub("", _DOC_NON_DIGIT.sub("", v))
    return d if 7 <= len(d) <= 15 else None


def _normalize_doc(field: str, value: str | None, default_country: str | None) -> tuple[str | None, bool]:
    _check_field(field)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_INPUT_CHARS:
        return None, False
    if field == "external_id":
        return _external_id(value)
    h = value.lower().strip()
    if _SDK_HASHED.match(h):  # 32 or 64 hex: the SDK's rule, and capi-param-builder's SHA_256_OR_MD5_REGEX
        return h, True
    if field == "em" or field in _PARTIAL_FIELDS:
        return _sdk(field, value)
    if field == "ph":
        return _doc_phone(value, default_country), False
    if field == "fn" or field == "ln":
        return (_DOC_NAME_STRIP.sub("", value).lower() or None), False
    if field == "ge":
        return _doc_gender(value), False
    if field == "db":
        return _doc_date(value, default_country), False
    if field == "ct":
        v = _DOC_NON_LATIN_ALNUM.sub("", value).lower()
        return (v if v[:1].isalpha() else None), False  # capi-param-builder test: '^[a-z]+'
    if field == "st":
        return _doc_state(value), False
    if field == "zp":
        return _doc_zip(value, default_country), False
    # country. Doc: "Use the lowercase, 2-letter country codes in ISO 3166-1 alpha-2."
    code = country_alpha2(value)
    return (code.lower() if code else None), False


def meta_normalize_doc(field: str, value: str | None, *, default_country: str | None = None) -> str | None:
    """Docs-style normalised value (see module docstring), or the lowercased hash if already hashed."""
    return _normalize_doc(field, value, default_country)[0]


def meta_hash_doc(field: str, value: str | None, *, default_country: str | None = None) -> str | None:
    v, hashed = _normalize_doc(field, value, default_country)
    if v is None or hashed:
        return v
    return hash_or_none(v)
