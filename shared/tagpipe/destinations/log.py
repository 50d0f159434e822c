"""The dry-run destination: records what would be sent, sends nothing.

Used when no vendor credentials are configured, so a new user sees events flow end to end.
The payload keeps only hashed user data (see prepare), so the log line carries no raw PII.
"""

from __future__ import annotations

import json
import logging

import httpx

from tagpipe.destinations.base import (
    Batch,
    Destination,
    DestinationSettings,
    Prepared,
    Result,
    VendorRequest,
    Verdict,
)
from tagpipe.hashing import sha256_hex
from tagpipe.models import DeliveryTask, Event

log = logging.getLogger("tagpipe.destinations.log")


class LogSettings(DestinationSettings):
    max_batch: int = 100


class LogDestination(Destination):
    type = "log"
    test_mode = "own_endpoint"
    max_batch = 100
    Settings = LogSettings

    def prepare(self, event: Event) -> Prepared:
        identifiers = []
        user = {}
        if event.user_data.email:
            user["em"] = sha256_hex(event.user_data.email.strip().lower())
            identifiers.append("em")
        if event.client.client_id:
            identifiers.append("client_id")
        payload = {
            "event_name": event.name,
            "event_id": event.event_id,
            "event_time": int(event.timestamp),
            "value": event.ecommerce.value,
            "currency": event.ecommerce.currency,
            "user": user,
        }
        return Prepared(event.name, payload, identifiers)

    def build_requests(self, tasks: list[DeliveryTask]) -> Batch:
        body = {"data": [t.payload for t in tasks]}
        return Batch([VendorRequest("LOG", "log://dry-run", [t.event_uid for t in tasks], json=body)])

    def send_locally(self, request: VendorRequest) -> Result:
        log.info("dry-run %s", json.dumps(request.json, separators=(",", ":")))
        return Result(Verdict.OK, "ok", "dry run: logged, not sent")

    def classify(self, request: VendorRequest, response: httpx.Response | None, error: Exception | None) -> Result:
        return Result(Verdict.OK, "ok", "dry run")
