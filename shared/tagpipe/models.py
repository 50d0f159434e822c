"""The data that flows through tagpipe.

    RawHit        what collect received, byte for byte (the source of truth; replayable)
    Event         the canonical event transform builds from a hit (one hit may hold many events)
    DeliveryTask  one (event, destination) pair, with the vendor-ready payload already hashed
    Outcome       the one recorded end of a hit or of an (event, destination) pair
    FailedEvent   a versioned, self-describing record of anything that failed (Snowplow-style)
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tagpipe.reasons import require as registered_reason

Scalar = str | int | float | bool | None

# new_id: a version-4 UUID's 32 hex digits, as uuid4().hex gives, without its os.urandom call per id (a
# syscall that showed as 3 % of collect's time under load). BLAKE2b keyed with 32 random bytes drawn once
# per process (again in a forked child) over a counter: unpredictable without the key, so a client that
# saw some hit ids cannot guess the next ones (generated event ids derive from them), and unique.
_ID_KEY = os.urandom(32)
_id_counter = itertools.count()
_VERSION_4 = (0x4 << 76) | (0x2 << 62)  # RFC 4122: version 4, variant 10
_VERSION_MASK = ~((0xF << 76) | (0x3 << 62))


def _new_id_key() -> None:
    global _ID_KEY, _id_counter
    _ID_KEY, _id_counter = os.urandom(32), itertools.count()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_id_key)


def new_id() -> str:
    digest = hashlib.blake2b(next(_id_counter).to_bytes(16, "little"), digest_size=16, key=_ID_KEY).digest()
    return f"{int.from_bytes(digest, 'big') & _VERSION_MASK | _VERSION_4:032x}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    def compact_json(self, **kwargs) -> str:
        """The JSON that is stored and queued: None fields left out. Lossless, because every field that
        may be None defaults to None (tests/unit/test_compact_documents.py), and a third smaller for an
        event (Pub/Sub and BigQuery subscriptions bill by the byte: docs/benchmarks.md §5)."""
        return self.model_dump_json(exclude_none=True, **kwargs)


# --------------------------------------------------------------------------- raw input

HitSource = Literal["gtag", "mp", "json", "shopify", "woocommerce", "segment"]


class RawHit(_Model):
    """One HTTP request to collect, kept as received (headers reduced to the ones we use)."""

    hit_id: str = Field(default_factory=new_id)
    received_at: float = Field(default_factory=time.time)
    source: HitSource
    method: str = "POST"
    path: str = "/"
    query: str = ""
    body: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    cookies: dict[str, str] = Field(default_factory=dict)
    client_ip: str | None = None
    debug_token: str | None = None


# --------------------------------------------------------------------------- canonical event


class Consent(_Model):
    """Consent state. None means the signal was absent (not the same as denied)."""

    ad_storage: bool | None = None
    analytics_storage: bool | None = None
    ad_user_data: bool | None = None
    ad_personalization: bool | None = None
    non_personalized_ads: bool = False  # gtag npa=1
    dma: bool | None = None  # gtag dma=1: the EU Digital Markets Act applies
    limited_data_use: bool = False  # Meta LDU
    raw: dict[str, str] = Field(default_factory=dict)  # gcs / gcd / ... as received

    def granted(self, purpose: str, default: bool = True) -> bool:
        value = getattr(self, purpose)
        return default if value is None else bool(value)


class Address(_Model):
    first_name: str | None = None
    last_name: str | None = None
    street: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class UserData(_Model):
    """Customer information. Raw PII until transform hashes it per vendor; never logged."""

    email: str | None = None
    phone: str | None = None
    other_emails: list[str] = Field(default_factory=list)  # further emails of the same person (Meta sends lists)
    other_phones: list[str] = Field(default_factory=list)
    address: Address = Field(default_factory=Address)
    gender: str | None = None
    date_of_birth: str | None = None
    # the parts of a name or birth date a site knows when it does not know the whole (Meta f5first, f5last,
    # fi, dobd, dobm, doby): given as such, never derived from first_name / date_of_birth
    first_name_prefix: str | None = None
    last_name_prefix: str | None = None
    first_initial: str | None = None
    birth_day: str | None = None
    birth_month: str | None = None
    birth_year: str | None = None
    external_id: str | None = None
    # Meta ids sent unhashed: lead ads / CRM lead, subscription, Facebook Login app-scoped id, the Page of a
    # business-messaging conversation
    lead_id: str | None = None
    subscription_id: str | None = None
    fb_login_id: str | None = None
    page_id: str | None = None


class ClientContext(_Model):
    client_id: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    session_count: int | None = None
    engagement_time_msec: int | None = None
    ip: str | None = None
    user_agent: str | None = None
    language: str | None = None
    screen_resolution: str | None = None
    client_hints: dict[str, str] = Field(default_factory=dict)
    geo: dict[str, str] = Field(default_factory=dict)  # country/region/city from LB headers


class ClickIds(_Model):
    fbp: str | None = None
    fbc: str | None = None
    fbclid: str | None = None
    gclid: str | None = None
    gbraid: str | None = None
    wbraid: str | None = None
    dclid: str | None = None
    ttclid: str | None = None
    ttp: str | None = None
    ctwa_clid: str | None = None  # Meta click-to-WhatsApp ad click id (business messaging)
    epik: str | None = None  # Pinterest click id (URL `epik`, cookie `_epik`)
    sc_click_id: str | None = None  # Snapchat click id (URL `ScCid`, cookie `_scclid`)
    sc_cookie1: str | None = None  # Snap Pixel browser id (cookie `_scid`)
    rdt_cid: str | None = None  # Reddit click id (URL `rdt_cid`, cookie `_rdt_cid`)
    rdt_uuid: str | None = None  # Reddit Pixel cookie `_rdt_uuid` as set ("<ms>.<uuid>")
    li_fat_id: str | None = None  # LinkedIn first-party ads tracking UUID (URL and cookie `li_fat_id`)
    msclkid: str | None = None  # Microsoft Advertising click id (URL `msclkid`, cookie `_uetmsclkid`)
    uet_vid: str | None = None  # Microsoft UET visitor id (cookie `_uetvid`)


class PageContext(_Model):
    url: str | None = None
    referrer: str | None = None
    title: str | None = None
    hostname: str | None = None


class Item(_Model):
    item_id: str | None = None
    item_name: str | None = None
    affiliation: str | None = None
    coupon: str | None = None
    discount: float | None = None
    index: int | None = None
    item_brand: str | None = None
    item_category: str | None = None
    item_category2: str | None = None
    item_category3: str | None = None
    item_category4: str | None = None
    item_category5: str | None = None
    item_list_id: str | None = None
    item_list_name: str | None = None
    item_variant: str | None = None
    location_id: str | None = None
    price: float | None = None
    quantity: float | None = None
    promotion_id: str | None = None
    promotion_name: str | None = None
    creative_name: str | None = None
    creative_slot: str | None = None
    custom: dict[str, Scalar] = Field(default_factory=dict)


class Ecommerce(_Model):
    value: float | None = None
    currency: str | None = None
    transaction_id: str | None = None
    tax: float | None = None
    shipping: float | None = None
    coupon: str | None = None
    items: list[Item] = Field(default_factory=list)


class Event(_Model):
    """The canonical event: vendor-neutral, what every destination maps from."""

    event_uid: str  # internal and unique: "<hit_id>:<index>"
    hit_id: str
    event_id: str  # the dedup key shared with the browser pixel
    event_id_generated: bool = False
    name: str
    timestamp: float  # unix seconds (float, ms precision)
    source: HitSource
    measurement_id: str | None = None
    action_source: str = "website"
    page: PageContext = Field(default_factory=PageContext)
    client: ClientContext = Field(default_factory=ClientContext)
    user_data: UserData = Field(default_factory=UserData)
    click_ids: ClickIds = Field(default_factory=ClickIds)
    consent: Consent = Field(default_factory=Consent)
    ecommerce: Ecommerce = Field(default_factory=Ecommerce)
    params: dict[str, Scalar] = Field(default_factory=dict)
    user_properties: dict[str, Scalar] = Field(default_factory=dict)
    experiments: dict[str, str] = Field(default_factory=dict)  # experiment id -> variant
    debug: bool = False
    debug_token: str | None = None
    test_event_code: str | None = None
    vendor_event_name: str | None = None  # set by a tag: destinations send it verbatim, unmapped
    cookies: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)


# --------------------------------------------------------------------------- delivery


class DeliveryTask(_Model):
    """One (event, destination) pair. `payload` is the vendor event, hashed and ready to batch."""

    event_uid: str
    hit_id: str
    event_id: str
    event_name: str  # the vendor's name for it (e.g. Purchase)
    event_time: float
    destination: str  # destination id from config
    payload: dict[str, Any]
    identifiers: list[str] = Field(default_factory=list)  # match keys present, for match quality
    notes: list[str] = Field(default_factory=list)  # what prepare changed to fit vendor limits (truncations)
    debug_token: str | None = None


class OutcomeKind(str, Enum):
    DELIVERED = "delivered"
    FILTERED = "filtered"
    REJECTED = "rejected"
    DEAD_LETTERED = "dead_lettered"


HIT_LEVEL = "*"  # the destination column of outcomes that belong to a whole hit or event


class Outcome(_Model):
    hit_id: str
    event_uid: str = HIT_LEVEL
    destination: str = HIT_LEVEL
    outcome: OutcomeKind
    reason: str = ""  # short machine code: consent, bot, invalid_json, meta:190, ... (tagpipe.reasons)
    detail: str = ""  # one human sentence, never PII
    event_name: str | None = None
    identifiers: list[str] = Field(default_factory=list)  # match keys carried (delivered outcomes)
    at: float = Field(default_factory=time.time)

    @field_validator("reason")
    @classmethod
    def _registered(cls, reason: str) -> str:
        return registered_reason(reason) if reason else reason


FAILED_EVENT_SCHEMA = "tagpipe/failed_event/1-0-0"


class FailedEvent(_Model):
    schema_: str = Field(default=FAILED_EVENT_SCHEMA, alias="schema")
    stage: Literal["collect", "transform", "deliver"]
    hit_id: str
    event_uid: str | None = None
    destination: str | None = None
    error_code: str
    message: str
    payload: str = ""  # the original input; PII-redacted unless the user opted in
    at: float = Field(default_factory=time.time)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
