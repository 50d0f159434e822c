"""Replay dead letters and backfill a destination: both idempotent thanks to event_id dedup."""

from __future__ import annotations

import time

import httpx

from tagpipe.config import load_config
from tagpipe.ops.replay import backfill, replay_dead_letters
from tagpipe.runtime import build_runtime
from tests.e2e.stack import LocalStack, wait_until
from tests.e2e.test_meta_end_to_end import PIXEL
from tests.fakes.vendors import FakeVendors

UA = {"user-agent": "Mozilla/5.0 Chrome/131.0"}


def meta_table(fakes: FakeVendors) -> str:
    return f"""
[destinations.meta]
type = "meta"
pixel_id = "{PIXEL}"
endpoint = "{fakes.url}"
"""


def post_events(stack: LocalStack, ids: list[str]) -> None:
    for event_id in ids:
        r = httpx.post(f"{stack.url}/events", headers=UA, json={
            "event_name": "purchase", "event_id": event_id, "value": 3, "currency": "EUR",
            "page_location": "https://shop.example/"})
        assert r.status_code == 200


def meta_outcomes(stack: LocalStack) -> dict[str, str]:
    return dict(stack.store.query("SELECT event_uid, outcome FROM outcomes WHERE destination = 'meta'"))


def test_replay_after_fixing_the_token_delivers_each_dead_letter_once(tmp_path, monkeypatch):
    ids = [f"r-{i}" for i in range(25)]
    with FakeVendors() as fakes:
        fakes.meta.expect_refusal("token")  # until the user fixes it
        stack = LocalStack(tmp_path / "s", meta_table(fakes), {"META_ACCESS_TOKEN": "expired"})
        with stack:
            post_events(stack, ids)
            wait_until(lambda: list(meta_outcomes(stack).values()).count("dead_lettered") == 25
                       and len(stack.store.query("SELECT 1 FROM failed_events WHERE error_code='dead_lettered'")) == 25,
                       what="25 dead letters")
        assert fakes.meta.count == 0
        stack.env["META_ACCESS_TOKEN"] = fakes.meta_token  # the user fixes the token
        with stack:
            monkeypatch.setenv("META_ACCESS_TOKEN", fakes.meta_token)
            rt = build_runtime(load_config(stack.config_path))
            seen = []
            report = replay_dead_letters(rt, "meta", progress=lambda done, total: seen.append((done, total)))
            assert (report.selected, report.queued) == (25, 25) and seen[-1] == (25, 25)
            wait_until(lambda: list(meta_outcomes(stack).values()).count("delivered") == 25, what="replayed deliveries")
            again = replay_dead_letters(rt, "meta")
            assert again.selected == 0  # replayed letters are not picked up twice
            rt.close()
        assert sorted(fakes.meta.event_ids()) == sorted(ids) and fakes.meta.duplicates() == {}
        assert len(meta_outcomes(stack)) == 25  # still exactly one outcome per (event, destination)


def test_backfill_a_new_destination_twice_sends_once(tmp_path, monkeypatch):
    ids = [f"b-{i}" for i in range(30)]
    with FakeVendors() as fakes:
        stack = LocalStack(tmp_path / "s", '[destinations.dry_run]\ntype = "log"\n')
        with stack:
            post_events(stack, ids)
            wait_until(lambda: len(stack.store.query("SELECT 1 FROM outcomes WHERE destination='dry_run'")) == 30,
                       what="dry-run outcomes")
        stack.config_path.write_text(stack.config_path.read_text() + meta_table(fakes))
        stack.env["META_ACCESS_TOKEN"] = fakes.meta_token
        monkeypatch.setenv("META_ACCESS_TOKEN", fakes.meta_token)
        with stack:
            rt = build_runtime(load_config(stack.config_path))
            first = backfill(rt, "meta", 0, time.time() + 1)
            assert first.queued == 30
            wait_until(lambda: len(meta_outcomes(stack)) == 30, what="backfilled outcomes")
            second = backfill(rt, "meta", 0, time.time() + 1)
            assert second.queued == 30  # queued again, but deliver sees they were delivered
            wait_until(lambda: rt.bus.backlog().get("deliver", {}).get("messages", 0) == 0, what="the queue to drain")
            rt.close()
        assert sorted(fakes.meta.event_ids()) == sorted(ids) and fakes.meta.duplicates() == {}
        assert set(meta_outcomes(stack).values()) == {"delivered"}


def test_replay_command_line(tmp_path, monkeypatch, capsys):
    from tagpipe.ops.cli import main

    cfg = tmp_path / "tagpipe.toml"
    cfg.write_text(f'[storage]\ndir = "{tmp_path / "data"}"\n\n[destinations.dry_run]\ntype = "log"\n')
    assert main(["--config", str(cfg), "replay", "--since", "7d"]) == 0
    assert "dead letters selected 0, queued 0" in capsys.readouterr().out
    assert main(["--config", str(cfg), "backfill", "dry_run", "--since", "2026-01-01"]) == 0
    assert "stored events 0" in capsys.readouterr().out
