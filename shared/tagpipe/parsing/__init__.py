"""Input parsers: a RawHit in, canonical Events out (the hot path of collect and transform).

    parse_hit(raw, now=None) -> list[Event]
    validate_hit(raw) -> list[EventSketch]   collect's check: refuses exactly what parse_hit refuses

dispatches on raw.source to gtag.py (gtag.js /g/collect), mp.py (GA4 Measurement Protocol),
json_api.py (our POST /events), shopify.py or woocommerce.py (order webhooks, docs/webhooks.md),
segment.py (the Segment spec's /v1/track, /v1/batch ..., docs/segment.md).
Bad input raises tagpipe.errors.InvalidInput(code, message, status):
`code` is a short machine code (invalid_json, missing_event_name, too_many_events, ...), `message`
names the field and never echoes a value.

Deterministic: the result depends only on the RawHit (and `now`, which defaults to raw.received_at),
so collect (validate, answer 4xx) and transform (build) get the same events, and replays the same
event_uid / event_id.
"""

from __future__ import annotations

import re

from tagpipe.errors import InvalidInput
from tagpipe.models import Event, RawHit

from . import gtag, json_api, mp, segment, shopify, woocommerce
from ._common import (
    MAX_BATCH_EVENTS,
    MAX_FUTURE_SKEW_SECONDS,
    MAX_GTAG_EVENTS,
    MAX_ITEMS_PER_EVENT,
    MAX_PARAMS_PER_EVENT,
    MAX_VALUE_BYTES,
    EventSketch,
    HitContext,
    event_id_for,
    hit_fingerprint,
)

__all__ = [
    "parse_hit",
    "TEST_EVENT_CODE_HEADER",
    "validate_hit",
    "EventSketch",
    "event_id_for",
    "hit_fingerprint",
    "InvalidInput",
    "MAX_BATCH_EVENTS",
    "MAX_FUTURE_SKEW_SECONDS",
    "MAX_GTAG_EVENTS",
    "MAX_ITEMS_PER_EVENT",
    "MAX_PARAMS_PER_EVENT",
    "MAX_VALUE_BYTES",
]


# A hit's Test Events code for Meta / TikTok set by a request header, so a developer tests a live page
# (a browser extension or curl adds it) without changing the site's tags. An event's own test_event_code
# param wins. Meta's codes look like TEST12345; the check only keeps the header to a token.
TEST_EVENT_CODE_HEADER = "x-tagpipe-test-event-code"
_TEST_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def header_test_event_code(raw: RawHit) -> str | None:
    code = raw.headers.get(TEST_EVENT_CODE_HEADER)
    if code is None:
        return None
    if not _TEST_CODE.fullmatch(code):
        raise InvalidInput("invalid_field", f"header {TEST_EVENT_CODE_HEADER} must be 1-64 letters, digits, '_' or '-'")
    return code


def parse_hit(raw: RawHit, *, now: float | None = None) -> list[Event]:
    events = _parse(raw, now)
    code = header_test_event_code(raw)
    if code:
        for event in events:
            if event.test_event_code is None:
                event.test_event_code = code
    return events


def _parse(raw: RawHit, now: float | None) -> list[Event]:
    """The canonical events of one hit, in order. Raises InvalidInput for bad input.

    `now` is only the reference for refusing timestamps too far in the future; it defaults to
    raw.received_at so that parsing the same RawHit twice gives the same result.
    """
    ref = raw.received_at if now is None else now
    ctx = HitContext(raw)
    source = raw.source
    if source == "gtag":
        return gtag.parse(raw, ctx)
    if source == "mp":
        return mp.parse(raw, ctx, ref)
    if source == "json":
        return json_api.parse(raw, ctx, ref)
    if source == "shopify":
        return shopify.parse(raw, ref)
    if source == "woocommerce":
        return woocommerce.parse(raw, ref)
    if source == "segment":
        return segment.parse(raw, ctx, ref)
    raise InvalidInput("unsupported_source", f"source must be gtag, mp or json, not {str(source)[:20]!r}")


def validate_hit(raw: RawHit) -> list[EventSketch]:
    """parse_hit's verdict on a hit (the same InvalidInput for the same bad input, so a hit this
    accepts parses in transform) and, per event, what collect needs: the page URL, consent, the client
    id and, for the JSON API and MP, the event id. No source builds Event models here."""
    header_test_event_code(raw)
    source = raw.source
    if source == "gtag":
        return gtag.validate(raw)
    if source == "json":
        return json_api.validate(raw, raw.received_at)
    if source == "mp":
        return mp.validate(raw, raw.received_at)
    return [EventSketch(e.page.url, e.consent, e.client.client_id, e.event_id) for e in parse_hit(raw)]
