"""On GCP deliver gets one Pub/Sub push per task; concurrent pushes are batched into full
vendor requests by the real deliver function (functions-framework ASGI app)."""

from __future__ import annotations

import asyncio
import base64
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
from functions_framework.aio import create_asgi_app

from tagpipe.config import load_config
from tagpipe.models import RawHit
from tagpipe.pipeline.stage import settle
from tagpipe.pipeline.transform import Transformer
from tagpipe.runtime import build_runtime, set_runtime
from tagpipe.transport.base import RAW_HITS
from tests.e2e.stack import ROOT
from tests.fakes.vendors import FakeVendors


def envelope(message_id: str, data: bytes, attributes: dict) -> dict:
    return {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes,
                        "messageId": message_id, "publishTime": "2026-11-25T08:00:00Z"},
            "subscription": "projects/p/subscriptions/tagpipe-deliver", "deliveryAttempt": 1}


def test_concurrent_pushes_become_one_meta_request(tmp_path, monkeypatch):
    with FakeVendors() as fakes:
        monkeypatch.setenv("META_ACCESS_TOKEN", fakes.meta_token)
        monkeypatch.setenv("TAGPIPE_PUSH_LINGER_MS", "300")
        cfg = tmp_path / "tagpipe.toml"
        cfg.write_text(f'[storage]\ndir = "{tmp_path / "data"}"\n\n[destinations.meta]\ntype = "meta"\n'
                       f'pixel_id = "123"\nendpoint = "{fakes.url}"\n')
        rt = build_runtime(load_config(cfg))
        set_runtime(rt)
        try:
            for i in range(50):
                hit = RawHit(source="json", headers={"user-agent": "Mozilla/5.0 Chrome/131.0"}, body=json.dumps(
                    {"event_name": "purchase", "event_id": f"p-{i}", "value": 1, "currency": "EUR",
                     "page_location": "https://shop.example/"}))
                rt.bus.publish(RAW_HITS, hit.model_dump_json().encode())
            transformer = Transformer(rt)
            messages = rt.bus.pull("transform", 100)
            settle(rt.bus, "transform", messages, transformer.handle(messages))
            tasks = rt.bus.pull("deliver", 100)
            assert len(tasks) == 50

            app = create_asgi_app(target="deliver", source=str(ROOT / "functions" / "deliver" / "main.py"))

            async def push_all():
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fn") as client:
                    return await asyncio.gather(*(
                        client.post("/", json=envelope(m.message_id, m.data, dict(m.attributes))) for m in tasks))

            # a thread of its own: other tests (Playwright's sync API) may leave a loop on this one
            with ThreadPoolExecutor(1) as pool:
                responses = pool.submit(asyncio.run, push_all()).result()
        finally:
            set_runtime(None)
            rt.close()
        assert [r.status_code for r in responses] == [204] * 50
        assert fakes.meta.count == 50
        assert len(fakes.meta.requests) == 1  # one vendor request for 50 pushes
