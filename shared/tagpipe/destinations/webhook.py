"""Webhook: POST batches of canonical events (user data already hashed) to any URL, signed.

    POST {endpoint}
    Content-Type: application/json
    X-Tagpipe-Delivery: <the event's delivery_id for a one-event request, else a digest of the events' ids>
    X-Tagpipe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
    {"events": [<event>, ...]}

Verifying on the receiving side (Stripe's scheme; see docs/destinations.md for a full example):
    1. split the header on "," into t=... and v1=... (ignore other keys, so a v2 can be added later);
    2. expected = hex(HMAC_SHA256(secret, f"{t}.".encode() + raw_body_bytes));
    3. compare with hmac.compare_digest against every v1 value; refuse when none match;
    4. refuse when |now - t| > 300 s (replay protection); dedupe each event on its `delivery_id`
       (stable per event and destination, the same on every resend in any batch) or on event_id.
The body is signed as sent (bytes), so verify before parsing JSON.

Each event: event_id, event_name, event_time (unix seconds, float), action_source, page, client (no IP
unless include_ip), user_data hashed with tagpipe.hashing.meta_hash (SHA-256 hex of the normalised value;
external_id SHA-256 too), click_ids, consent, ecommerce, params, user_properties, experiments. Raw email,
phone, names and addresses never leave tagpipe. (Custom params are passed as received: don't put PII in them.)

Answers: 2xx ok; 408/429/5xx and network errors retry (Retry-After honoured); any other 4xx is permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from pydantic import Field, field_validator

from tagpipe.destinations.base import (
    Batch,
    Destination,
    HttpDestinationSettings,
    Prepared,
    VendorRequest,
    chunks,
    mask_url,
)
from tagpipe.errors import ConfigError
from tagpipe.hashing import looks_hashed, meta_hash, sha256_hex
from tagpipe.models import DeliveryTask, Event

SIGNATURE_HEADER = "X-Tagpipe-Signature"
DELIVERY_HEADER = "X-Tagpipe-Delivery"
SIGNATURE_TOLERANCE_SECONDS = 300

USER_KEYS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Tagpipe-Signature value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_delivery_id(destination: str, event_uid: str) -> str:
    """Stable per (event, destination): every copy of a resent event carries it, whatever batch it
    lands in after a crash or a timeout (issue 14: the per-batch id changed when batches re-formed)."""
    return hashlib.sha256(f"{destination}\n{event_uid}".encode()).hexdigest()[:32]


def delivery_id(event_delivery_ids: list[str]) -> str:
    """The request's header: the event's own id for a one-event request, else a digest of the set
    (order-free), so the same events resent together carry the same header."""
    if len(event_delivery_ids) == 1:
        return event_delivery_ids[0]
    return hashlib.sha256("\n".join(sorted(event_delivery_ids)).encode()).hexdigest()[:32]


class WebhookSettings(HttpDestinationSettings):
    endpoint: str = Field(pattern=r"^https?://", description="the receiver's URL")
    secret_env: str = "TAGPIPE_WEBHOOK_SECRET"
    timeout: float = 5.0
    batch_size: int = Field(100, ge=1, le=1000, description="events per request")
    headers: dict[str, str] = Field(default_factory=dict, description="extra static headers (no secrets)")
    include_ip: bool = False  # the client IP is personal data: off unless the receiver needs it
    events: list[str] | None = None  # only these canonical event names; None = all

    @field_validator("headers")
    @classmethod
    def _no_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = {SIGNATURE_HEADER.lower(), DELIVERY_HEADER.lower(), "content-type"}
        clash = [k for k in value if k.lower() in reserved]
        if clash:
            raise ValueError(f"{clash[0]} is set by tagpipe")
        return value


class Webhook(Destination):
    type = "webhook"
    test_mode = "own_endpoint"
    max_batch = 100
    Settings = WebhookSettings
    settings: WebhookSettings

    def __init__(self, id: str, settings: WebhookSettings, secrets) -> None:
        super().__init__(id, settings, secrets)
        self.max_batch = settings.batch_size  # per instance

    def prepare(self, event: Event) -> Prepared | None:
        # a tag's event_name (Event.vendor_event_name, tagpipe.tagging) is sent verbatim as event_name, and a
        # tag that fired is not filtered again by `events`
        name = event.vendor_event_name or event.name
        if not event.vendor_event_name and self.settings.events is not None and event.name not in self.settings.events:
            return None
        notes: list[str] = []
        user, address = event.user_data, event.user_data.address
        raw = {"em": user.email, "ph": user.phone, "fn": address.first_name, "ln": address.last_name,
               "ge": user.gender, "db": user.date_of_birth, "ct": address.city, "st": address.region,
               "zp": address.postal_code, "country": address.country}  # fmt: skip
        user_data: dict[str, str] = {}
        for key in USER_KEYS:
            if not raw[key]:
                continue
            try:
                hashed = meta_hash(key, raw[key], default_country=self.settings.default_phone_country)
            except (TypeError, ValueError):
                notes.append(f"webhook:invalid_{key}")
                continue
            if hashed:
                user_data[key] = hashed
        if user.external_id:
            value = user.external_id.strip()
            user_data["external_id"] = value.lower() if looks_hashed(value) else sha256_hex(value)
        client = event.client
        client_out = {k: v for k, v in (("client_id", client.client_id), ("user_id", client.user_id),
                      ("session_id", client.session_id), ("user_agent", client.user_agent),
                      ("language", client.language)) if v}  # fmt: skip
        if self.settings.include_ip and client.ip:
            client_out["ip"] = client.ip
        payload: dict[str, Any] = {
            "event_id": event.event_id,
            "event_name": name,
            "event_time": event.timestamp,
            "action_source": event.action_source,
            "page": event.page.model_dump(exclude_none=True),
            "client": client_out,
            "user_data": user_data,
            "click_ids": event.click_ids.model_dump(exclude_none=True),
            "consent": event.consent.model_dump(exclude={"raw"}, exclude_none=True),
            "ecommerce": event.ecommerce.model_dump(exclude_none=True, exclude_defaults=True),
            "params": dict(event.params),
            "user_properties": dict(event.user_properties),
            "experiments": dict(event.experiments),
        }
        identifiers = [k for k in ("em", "ph", "fn", "ln", "external_id") if k in user_data]
        identifiers += [k for k in ("fbp", "fbc", "gclid", "gbraid", "wbraid", "ttclid", "ttp") if getattr(event.click_ids, k)]
        identifiers += [k for k in ("client_id", "user_id") if getattr(client, k)]
        return Prepared(name, payload, identifiers, notes)

    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        secret = self.secrets.get("secret")
        if not secret:
            raise ConfigError(f"destinations.{self.id}.secret_env",
                              f"the environment variable {self.settings.secret_env} is not set",
                              "set a long random secret shared with the receiver")  # fmt: skip
        batch = Batch()
        timestamp = int(self.now())
        masked = mask_url(self.settings.endpoint, ("token", "key", "secret", "api_key", "access_token", "sig"))
        for part in chunks(tasks, self.max_batch):
            uids = [t.event_uid for t in part]
            ids = [event_delivery_id(self.id, uid) for uid in uids]
            events = [{**t.payload, "delivery_id": d} for t, d in zip(part, ids, strict=True)]
            body = json.dumps({"events": events}, separators=(",", ":"), ensure_ascii=False).encode()
            headers = {
                **self.settings.headers,
                "Content-Type": "application/json",
                DELIVERY_HEADER: delivery_id(ids),
                SIGNATURE_HEADER: sign(secret, timestamp, body),
            }
            batch.requests.append(
                VendorRequest("POST", self.settings.endpoint, uids, headers=headers, content=body, masked_url=masked)
            )
        return batch

    # classify: the generic HTTP reading (base.classify_http) is exactly the webhook contract
