"""Small builders shared by the parsing tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tagpipe.errors import InvalidInput
from tagpipe.models import Event, RawHit
from tagpipe.parsing import parse_hit

RECEIVED = 1_735_732_000.0  # 2025-01-01T11:46:40Z
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0 Safari/537.36"
BASE = "v=2&tid=G-TEST123&cid=111.222"


def gtag_hit(query: str = BASE + "&en=page_view", body: str = "", **kw: Any) -> RawHit:
    kw.setdefault("hit_id", "h1")
    kw.setdefault("received_at", RECEIVED)
    return RawHit(source="gtag", query=query, body=body, **kw)


def mp_hit(body: Any, query: str = "measurement_id=G-MP1&api_secret=s3cr3t", **kw: Any) -> RawHit:
    kw.setdefault("hit_id", "m1")
    kw.setdefault("received_at", RECEIVED)
    text = body if isinstance(body, str) else json.dumps(body)
    return RawHit(source="mp", query=query, body=text, **kw)


def json_hit(body: Any, **kw: Any) -> RawHit:
    kw.setdefault("hit_id", "j1")
    kw.setdefault("received_at", RECEIVED)
    text = body if isinstance(body, str) else json.dumps(body)
    return RawHit(source="json", body=text, **kw)


def one(raw: RawHit, **kw: Any) -> Event:
    events = parse_hit(raw, **kw)
    assert len(events) == 1
    return events[0]


def refused(raw: RawHit, code: str, status: int = 400, **kw: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_hit(raw, **kw)
    assert info.value.code == code, info.value.message
    assert info.value.status == status
    return info.value
