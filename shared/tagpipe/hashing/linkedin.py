"""LinkedIn Conversions API (`/rest/conversionEvents`): the one hashed id, SHA256_EMAIL.

[doc] https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads-reporting/conversions-api (userIds:
"SHA256_EMAIL: email address ... in SHA256 format, a HEX encoded string"); LinkedIn's partner template
([code] stape-io/linkedin-tag template.js @61673de hashData) hashes trim().toLowerCase() and lets a
^[A-Fa-f0-9]{64}$ value through. No gmail dot/plus rule (that is Google's alone, VENDORS §6.3).
userInfo (firstName, lastName, companyName, title, countryCode) is sent in clear, as LinkedIn documents it;
LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID (li_fat_id) is an id, never hashed.
"""

from __future__ import annotations

from tagpipe.hashing._core import MAX_INPUT_CHARS, hash_or_none, hashed64


def linkedin_email_hash(value: str | None) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_INPUT_CHARS or not value.strip():
        return None
    if h := hashed64(value):
        return h
    v = value.strip().lower()
    return hash_or_none(v) if "@" in v else None
