"""Pub/Sub push delivery: turn the HTTP request Pub/Sub sends into a `Message`, and back.

With `stage_trigger = "push"` (Terraform), transform and deliver run as plain HTTP functions
behind push subscriptions (with "schedule" they drain pull subscriptions instead, see
tagpipe.pipeline.drain; the same entry point takes both). Not CloudEvent functions:
functions-framework's `--asgi` mode rejects a raw push envelope for a cloudevent signature, and a
direct push subscription lets Terraform own the retry and dead-letter policy.
The function calls `parse_push_envelope(body, headers)`, runs the stage on `[message]` and
answers with one of the status codes below; Pub/Sub treats any 2xx as an ack and anything else
as a nack, redelivering with the subscription's retry-policy backoff until
max_delivery_attempts, then dead-lettering.

The envelope (the same JSON body for a push subscription and for an Eventarc Pub/Sub trigger):

    {"message": {"data": "<base64>", "attributes": {...}, "messageId": "...",
                 "publishTime": "2026-01-01T00:00:00.123456789Z"},
     "subscription": "projects/<p>/subscriptions/<name>",
     "deliveryAttempt": 3}

`deliveryAttempt` is only sent by Pub/Sub on subscriptions with a dead-letter policy, and the
emulator never sends it: when it is absent the message says 1 (stage code must not rely on it
to stop retrying; the dead-letter policy does that).

In push mode there is no ack id: `Message.ack_id` holds "<subscription>#<messageId>" so logs can
tell which subscription delivered it; never pass it to `Bus.ack`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tagpipe.errors import InvalidInput
from tagpipe.transport.base import Message, stage_subscription

# What the function answers. Pub/Sub: 102, 200, 201, 202, 204 ack; anything else nacks.
ACK = 204
NACK = 503  # retry with the subscription's backoff
THROTTLE = 429  # the same to Pub/Sub (it also slows push delivery down when it sees them)
BAD_ENVELOPE = 400  # not a push request: also retried, then dead-lettered (the payload is kept)

DEAD_LETTER_SOURCE = "CloudPubSubDeadLetterSourceSubscription"
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_push_envelope(
    body: bytes | str, headers: Mapping[str, str] | None = None, *, prefix: str | None = None
) -> Message:
    """Parse a Pub/Sub push request body into a Message; raise InvalidInput if it is not one.

    `headers` is accepted for symmetry with the HTTP handler and checked only for a JSON
    content type when one is given. With `prefix`, a dead-letter source subscription attribute
    "<prefix>-deliver" or "<prefix>-deliver-<destination>" is reported as "deliver", as
    `PubSubBus.pull` does.
    """
    if headers is not None:
        content_type = _header(headers, "content-type")
        if content_type and "json" not in content_type.lower():
            raise InvalidInput("invalid_push_envelope", f"expected a JSON body, got {content_type!r}")
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("invalid_push_envelope", f"body is not JSON: {exc}") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("message"), dict):
        raise InvalidInput("invalid_push_envelope", "no 'message' object: not a Pub/Sub push request")
    msg: dict[str, Any] = envelope["message"]

    message_id = msg.get("messageId", msg.get("message_id"))
    if not isinstance(message_id, str) or not message_id:
        raise InvalidInput("invalid_push_envelope", "message.messageId missing")

    raw = msg.get("data", "")
    if not isinstance(raw, str):
        raise InvalidInput("invalid_push_envelope", "message.data is not a base64 string")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("invalid_push_envelope", "message.data is not valid base64") from exc

    attributes = msg.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise InvalidInput("invalid_push_envelope", "message.attributes must map strings to strings")
    attributes = dict(attributes)
    if prefix:
        source = attributes.get(DEAD_LETTER_SOURCE, "")
        if source.startswith(prefix + "-"):
            attributes[DEAD_LETTER_SOURCE] = stage_subscription(source[len(prefix) + 1 :])

    attempt = envelope.get("deliveryAttempt", 1)  # absent: no dead-letter policy, or the emulator
    if isinstance(attempt, str) and attempt.isdigit():
        attempt = int(attempt)
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        raise InvalidInput("invalid_push_envelope", "deliveryAttempt is not a positive integer")

    subscription = envelope.get("subscription", "")
    if not isinstance(subscription, str):
        raise InvalidInput("invalid_push_envelope", "subscription is not a string")

    return Message(
        message_id=message_id,
        data=data,
        attributes=attributes,
        delivery_attempt=max(1, attempt),
        ack_id=f"{subscription}#{message_id}",
        publish_time=_timestamp(msg.get("publishTime", msg.get("publish_time"))),
    )


def subscription_of(message: Message) -> str:
    """The subscription that pushed this message ("" if the envelope did not say)."""
    return message.ack_id.rpartition("#")[0]


def _timestamp(value: Any) -> float:
    if not value:
        return 0.0
    if not isinstance(value, str):
        raise InvalidInput("invalid_push_envelope", "message.publishTime is not a string")
    text = _FRACTION.sub(r"\1", value.strip())  # Pub/Sub sends nanoseconds; datetime takes micro
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise InvalidInput("invalid_push_envelope", f"message.publishTime {value!r} is not RFC 3339") from exc


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for key, val in headers.items():
            if key.lower() == name:
                return val
    return value


def push_envelope(
    data: bytes,
    attributes: Mapping[str, str] | None = None,
    message_id: str = "1",
    subscription: str = "projects/local/subscriptions/tagpipe-local",
    delivery_attempt: int | None = None,
    publish_time: str = "2026-01-01T00:00:00.000Z",
) -> bytes:
    """Build the body Pub/Sub would push (for tests, the local runner and replays)."""
    envelope: dict[str, Any] = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": dict(attributes or {}),
            "messageId": message_id,
            "publishTime": publish_time,
        },
        "subscription": subscription,
    }
    if delivery_attempt is not None:
        envelope["deliveryAttempt"] = delivery_attempt
    return json.dumps(envelope).encode()


__all__ = [
    "ACK",
    "NACK",
    "THROTTLE",
    "BAD_ENVELOPE",
    "parse_push_envelope",
    "push_envelope",
    "subscription_of",
]
