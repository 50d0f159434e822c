"""The hits the benchmarks send: real captures from tests/fixtures where we have them.

Each endpoint gets one request shape (method, path with query, headers, body). Collect does the same
work for a repeated hit as for a new one (dedup happens in deliver), so the HTTP benchmarks may send
the same bytes; the pipeline benchmark makes every event_id unique.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
CHROME_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/123.0.0.0 Safari/537.36")


@dataclass(frozen=True)
class Shape:
    name: str
    method: str
    path: str  # with the query string
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: int = 1  # events in one request


def _fixture(rel: str) -> dict:
    return json.loads((FIXTURES / rel).read_text())


def gtag_get() -> Shape:
    """GA4 page_view as gtag.js sends it to a server_container_url (captured), with _ga/_fbp cookies."""
    f = _fixture("gtag/page_view_get.input.json")
    cookies = "; ".join(f"{k}={v}" for k, v in f["cookies"].items())
    return Shape("gtag GET /g/collect", "GET", f"/g/collect?{f['query']}",
                 {"user-agent": CHROME_UA, "cookie": cookies, "accept-language": "es-419"})


def gtag_batch() -> Shape:
    """gtag.js batched POST: shared params in the query, three \\r\\n-separated view_item_list events (captured)."""
    f = _fixture("gtag/batch_crlf_view_item_list.input.json")
    return Shape("gtag POST /g/collect (3 events)", "POST", f"/g/collect?{f['query']}",
                 {"user-agent": CHROME_UA, "content-type": "text/plain;charset=UTF-8"},
                 f["body"].encode(), events=3)


def json_event(event_id: str = "order-1001") -> dict:
    return {"event_name": "purchase", "event_id": event_id, "client_id": "2077486026.1712887266",
            "value": 42.5, "currency": "EUR",
            "page_location": "https://shop.example/checkout",
            "user_data": {"email": "jane@example.com", "phone": "+1 650 555 1234"}}


def events_api() -> Shape:
    """The JSON API: one purchase with customer data, as a backend posts it."""
    return Shape("POST /events", "POST", "/events", {"user-agent": CHROME_UA, "content-type": "application/json"},
                 json.dumps(json_event()).encode())


def mp() -> Shape:
    """GA4 Measurement Protocol: the full purchase of the reference docs (user_data, items, consent)."""
    f = _fixture("mp/purchase_full.input.json")
    return Shape("POST /mp/collect", "POST", f"/mp/collect?{f['query']}", {"content-type": "application/json"},
                 f["body"].encode())


def collect_shapes() -> list[Shape]:
    return [gtag_get(), gtag_batch(), events_api(), mp()]
