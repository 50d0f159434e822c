"""Phone numbers to E.164 with libphonenumber (the `phonenumbers` package, Google's library ported to Python).

Why a library and not a regex: a national number hashed without its country code never matches (VENDORS §6.2:
"Never hash a number that lacks a country code"), and only the numbering-plan metadata knows that
'020 7946 0958' in GB is +44 20 7946 0958, that '+44 (0)20 …' has a trunk 0 to drop, that '011 44 …' is an
international call from the US and '0011 44 …' one from Australia, while '06 …' in Italy keeps its 0.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from tagpipe.hashing._core import MAX_INPUT_CHARS, country_alpha2

_E164 = PhoneNumberFormat.E164
_parse = phonenumbers.parse
_is_valid = phonenumbers.is_valid_number
_is_possible = phonenumbers.is_possible_number
_format = phonenumbers.format_number
_digits_only = phonenumbers.normalize_digits_only  # also maps non-ASCII digits ('٠٦…') to ASCII
_PLUS = ("+", "\uff0b")  # '+' and the full-width plus libphonenumber also accepts


@lru_cache(maxsize=512)  # keyed by a country name/code, never by PII
def region_code(default_country: str | None) -> str | None:
    """A libphonenumber region ('GB') for 'gb', 'UK', 'United Kingdom', …; None if unknown."""
    if not default_country:
        return None
    code = country_alpha2(default_country)
    if code and code in phonenumbers.SUPPORTED_REGIONS:
        return code
    return None


def _try_parse(text: str, region: str | None):
    try:
        return _parse(text, region)
    except NumberParseException:
        return None


def to_e164(value: str, default_country: str | None = None) -> str | None:
    """'+14155550100'-style E.164 (with '+'), or None when no country code can be established.

    - International form ('+…', '00…', or the region's own IDD such as '011' in the US) is parsed as such;
      an explicit country code is trusted when the length is possible for that country (is_possible_number)
      even if libphonenumber's metadata does not yet know the range.
    - National form ('020 7946 0958', '(650) 555-1234', '06 12 34 56 78') needs `default_country`: the
      country calling code is prefixed and the trunk prefix dropped (libphonenumber parse with region).
    - Digits only without '+' and without a region ('447911123456'): accepted only when they form a *valid*
      number read as international, because a bare national number would otherwise be hashed with a wrong
      country code.
    - Extensions ('ext. 12') are dropped: E.164 has none.
    """
    s = value.strip()
    if not s or len(s) > MAX_INPUT_CHARS:
        return None
    digits = _digits_only(s)
    if not digits:
        return None
    plus = s.lstrip("( ").startswith(_PLUS)
    idd00 = not plus and digits.startswith("00")
    region = region_code(default_country)

    if region:
        n = _try_parse(s, region)
        if n is not None and _is_valid(n):
            return _format(n, _E164)
        if not plus:
            m = None
            if idd00:  # '00' is the IDD of most of the world, but not of every region (US: 011)
                m = _try_parse("+" + digits[2:], None)
            elif not digits.startswith("0"):  # country code typed without its '+'
                m = _try_parse("+" + digits, None)
            if m is not None and _is_valid(m):
                return _format(m, _E164)
        if n is not None and _is_possible(n):
            return _format(n, _E164)
        return None

    if plus:
        n = _try_parse(s, None)
    elif idd00:
        n = _try_parse("+" + digits[2:], None)
    else:
        n = _try_parse("+" + digits, None)
        return _format(n, _E164) if n is not None and _is_valid(n) else None
    return _format(n, _E164) if n is not None and _is_possible(n) else None
