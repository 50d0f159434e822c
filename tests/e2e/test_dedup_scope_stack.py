"""[delivery] dedup on the real local stack (`tagpipe run`, SQLite store) against a fake Meta CAPI: a repeated
page_view (same event_id, another hit) is sent again under "conversions", a repeated purchase is not; under
"all" neither is."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.stack import LocalStack, wait_until
from tests.e2e.test_meta_end_to_end import meta_config
from tests.fakes.vendors import FakeVendors

UA = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
      "cookie": "_fbp=fb.1.1700000000000.123456789"}


@pytest.fixture
def fakes():
    with FakeVendors() as f:
        yield f


def send_and_settle(stack: LocalStack, name: str, event_id: str) -> tuple[str, str]:
    """One hit; waits for its Meta outcome (a later hit must see this one's delivered marker)."""
    r = httpx.post(f"{stack.url}/events", headers=UA, json={
        "event_name": name, "event_id": event_id, "page_location": "https://shop.example/p",
        "value": 10, "currency": "EUR",
    })
    assert r.status_code == 200, r.text
    hit_id = r.json()["hit_id"]
    (row,) = wait_until(lambda: [o[3:] for o in stack.outcomes() if o[0] == hit_id and o[2] == "meta"],
                        what=f"the meta outcome of {name}")
    return row


@pytest.mark.parametrize("scope, page_views, purchases", [("conversions", 2, 1), ("all", 1, 1)])
def test_repeats_are_sent_or_filtered_by_the_dedup_scope(tmp_path, fakes, scope, page_views, purchases):
    config = meta_config(fakes.url).replace("[delivery]\n", f'[delivery]\ndedup = "{scope}"\n')
    with LocalStack(tmp_path / "s", config, {"META_ACCESS_TOKEN": fakes.meta_token}) as stack:
        results = [send_and_settle(stack, name, eid)
                   for name, eid in (("page_view", "pv-1"), ("page_view", "pv-1"),
                                     ("purchase", "o-1"), ("purchase", "o-1"))]
        names = [e["event_name"] for e in fakes.meta.events]
        assert names.count("PageView") == page_views
        assert names.count("Purchase") == purchases
        delivered = ("delivered", "ok")
        duplicate = ("filtered", "duplicate")
        expected_pv = [delivered, delivered] if page_views == 2 else [delivered, duplicate]
        assert results == expected_pv + [delivered, duplicate]
        marked = {k for (k,) in stack.store.query("SELECT dedup_key FROM delivered WHERE destination = 'meta'")}
        assert marked == ({"Purchase:o-1"} if scope == "conversions" else {"PageView:pv-1", "Purchase:o-1"})
        assert stack.store.query("SELECT COUNT(*) FROM inflight") == [(0,)]
        assert stack.stop() == 0
