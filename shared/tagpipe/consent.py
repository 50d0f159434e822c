"""Per-destination consent policy: allow, allow with restrictions, or deny.

The parsers turn gcs/gcd/npa/dma (gtag), the MP `consent` object and the JSON API's `consent` object
into `Event.consent` (None = no signal). transform asks `ConsentPolicy.decide(event, type, required)`
for each destination and gets a `ConsentDecision`:

    deny(reason)   a purpose the destination requires is not granted -> outcome filtered / consent
    restrict       delivered, but `decision.apply(event)` strips what consent does not cover
    allow          delivered as is

The matrix (docs/consent.md has the long form):

| destination | denied purpose | result |
|---|---|---|
| any | a purpose in the destination's `consent` list (defaults: Meta/TikTok/Google Ads ad_storage + ad_user_data, GA4 analytics_storage) | deny |
| meta, tiktok, google_ads, pinterest, snapchat, reddit, linkedin, microsoft_ads | ad_user_data, or npa=1 | restrict: no user data (email, phone, name, address, external id) |
| the same | ad_storage | restrict: no cookie ids (_fbp, _ttp, _scid, _rdt_uuid, _uetvid, client id; click ids only if the page URL carries them) |
| ga4 | analytics_storage with `google_mode = "advanced"` | restrict (cookieless ping): one-off client id, no user id, session, user data; ad_user_data and ad_personalization sent as DENIED |
| meta | region in `meta_ldu_regions` or consent.limited_data_use | restrict: data_processing_options = ["LDU"] |

An absent signal counts as `default` (granted unless configured "denied" for strict opt-in).
Consent values each destination receives are forwarded by the destination itself (GA4 MP `consent`,
Google Ads `consent.adUserData`, Meta `opt_out` for ad_personalization denied / npa=1 and LDU).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tagpipe.models import ClickIds, ClientContext, Event, UserData

PURPOSES = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")
AD_PLATFORMS = frozenset({"meta", "tiktok", "google_ads", "data_manager", "pinterest", "snapchat", "reddit", "linkedin",
                          "microsoft_ads"})  # fmt: skip
_EPHEMERAL_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/tagpipe/tagpipe/cookieless")


class ConsentConfig(BaseModel):
    """`[consent]`: replaces config.py's section of the same name (same `default` key)."""

    model_config = ConfigDict(extra="forbid")

    default: Literal["granted", "denied"] = Field("granted", description="what an absent consent signal means")
    google_mode: Literal["basic", "advanced"] = Field(
        "basic",
        description="GA4 with analytics_storage denied: basic = not sent; advanced = cookieless ping (no ids)",
    )
    strip_user_data_on_npa: bool = Field(True, description="npa=1 -> no user data to ad platforms")
    meta_ldu_regions: list[str] = Field(
        default_factory=list,
        description='Meta Limited Data Use for these regions: ISO 3166 country "US" or subdivision "US-CA"',
    )

    @field_validator("meta_ldu_regions")
    @classmethod
    def _regions(cls, v: list[str]) -> list[str]:
        out = []
        for r in v:
            r = r.strip().upper()
            country, _, sub = r.partition("-")
            if len(country) != 2 or not country.isalpha() or (sub and not sub.isalnum()):
                raise ValueError(f"{r!r} is not an ISO 3166 code such as US or US-CA")
            out.append(r)
        return out


def consent_config(config: object) -> ConsentConfig:
    """The `[consent]` section as this module's model (config.py's older model has only `default`)."""
    section = getattr(config, "consent", None)
    if isinstance(section, ConsentConfig):
        return section
    if section is not None and hasattr(section, "default"):
        return ConsentConfig(default=section.default)
    return ConsentConfig()


@dataclass(frozen=True)
class ConsentDecision:
    allowed: bool
    reason: str = ""  # why denied: "consent not granted: ad_storage" (never PII)
    strip_user_data: bool = False
    strip_ids: bool = False
    cookieless: bool = False
    limited_data_use: bool = False

    @property
    def kind(self) -> Literal["allow", "restrict", "deny"]:
        if not self.allowed:
            return "deny"
        if self.strip_user_data or self.strip_ids or self.cookieless or self.limited_data_use:
            return "restrict"
        return "allow"

    @property
    def restrictions(self) -> list[str]:
        names = ("strip_user_data", "strip_ids", "cookieless", "limited_data_use")
        return [n for n in names if getattr(self, n)]

    def apply(self, event: Event) -> Event:
        """The event as this destination may receive it (the same object when nothing changes)."""
        if not self.allowed or self.kind == "allow":
            return event
        update: dict = {}
        consent = event.consent
        if self.strip_user_data or self.cookieless:
            update["user_data"] = UserData()
        if self.strip_ids or self.cookieless:
            update["click_ids"] = _url_click_ids(event)
            update["cookies"] = {}
        if self.cookieless:
            update["client"] = ClientContext(
                client_id=str(uuid.uuid5(_EPHEMERAL_NS, event.event_uid)),  # one-off: never the same twice
                ip=event.client.ip, user_agent=event.client.user_agent, language=event.client.language,
                screen_resolution=event.client.screen_resolution, geo=event.client.geo,
            )  # fmt: skip
            update["user_properties"] = {}
            consent = consent.model_copy(update={"ad_user_data": False, "ad_personalization": False})
        elif self.strip_ids:
            update["client"] = event.client.model_copy(update={"client_id": None})
        if self.limited_data_use and not consent.limited_data_use:
            consent = consent.model_copy(update={"limited_data_use": True})
        if consent is not event.consent:
            update["consent"] = consent
        return event.model_copy(update=update)


ALLOW = ConsentDecision(True)


# ClickIds fields a page URL can carry (tagpipe.parsing._common.URL_CLICK_IDS, Snapchat's ScCid as sc_click_id)
URL_CLICK_ID_KINDS = ("gclid", "gbraid", "wbraid", "dclid", "ttclid", "fbclid", "epik", "sc_click_id", "rdt_cid",
                      "li_fat_id", "msclkid")  # fmt: skip


def _url_click_ids(event: Event) -> ClickIds:
    """Click ids the current page URL carries (URL passthrough, not storage); cookie-derived ids go."""
    from tagpipe.parsing._common import click_ids_from_url

    url = click_ids_from_url(event.page.url)
    c = event.click_ids
    kept = {k: getattr(c, k) for k in URL_CLICK_ID_KINDS
            if getattr(c, k) and url.get(k) == getattr(c, k)}  # fmt: skip
    if c.fbc and url.get("fbclid") and c.fbc.split(".")[3:4] == [url["fbclid"]]:
        kept["fbc"] = c.fbc  # the fbc of this very click
    return ClickIds(**kept)


def consented_user_id(event: Event) -> str | None:
    """The hit's user id where an ad platform may get it as its external id: never with ad_user_data denied or
    npa=1 (ConsentDecision.apply empties user_data, the user id lives in the client context)."""
    if event.consent.ad_user_data is False or event.consent.non_personalized_ads:
        return None
    return event.client.user_id


def geo_region(geo: dict[str, str]) -> tuple[str, str]:
    """geo {'country': 'US', 'region': 'CA' | 'US-CA' | 'USCA' | 'ca'} -> ('US', 'CA'); '' where unknown."""
    country = (geo.get("country") or "").strip().upper()
    if not country:
        return "", ""
    region = (geo.get("region") or "").strip().upper().replace("-", "")
    if region.startswith(country) and len(region) > len(country):
        region = region[len(country):]
    return country, region


def region_matches(geo: dict[str, str], regions: Sequence[str]) -> bool:
    """geo (as geo_region reads it) against ['US-CA', 'BR', ...]."""
    if not regions:
        return False
    country, region = geo_region(geo)
    if not country:
        return False
    for r in regions:
        c, _, sub = r.partition("-")
        if c == country and (not sub or sub == region):
            return True
    return False


class ConsentPolicy:
    def __init__(self, cfg: ConsentConfig | None = None) -> None:
        self.cfg = cfg or ConsentConfig()
        self.default = self.cfg.default == "granted"

    @classmethod
    def from_config(cls, config: object) -> ConsentPolicy:
        return cls(consent_config(config))

    def decide(self, event: Event, dest_type: str, required: Sequence[str] = ()) -> ConsentDecision:
        c, d = event.consent, self.default
        granted = {p: c.granted(p, d) for p in PURPOSES}
        cookieless = False
        denied = [p for p in required if not granted.get(p, d)]
        if dest_type == "ga4" and not granted["analytics_storage"]:
            if "analytics_storage" not in denied:
                cookieless = True  # not required by config, yet no analytics storage: no ids
            elif self.cfg.google_mode == "advanced":
                denied.remove("analytics_storage")
                cookieless = True
        if denied:
            return ConsentDecision(False, f"consent not granted: {', '.join(denied)}")
        if dest_type in AD_PLATFORMS:
            strip_user_data = not granted["ad_user_data"] or (c.non_personalized_ads and self.cfg.strip_user_data_on_npa)
            ldu = dest_type == "meta" and (c.limited_data_use or region_matches(event.client.geo, self.cfg.meta_ldu_regions))
            decision = ConsentDecision(True, strip_user_data=strip_user_data, strip_ids=not granted["ad_storage"],
                                       limited_data_use=ldu)  # fmt: skip
            return decision if decision.kind == "restrict" else ALLOW
        if cookieless:
            return ConsentDecision(True, cookieless=True)
        return ALLOW
