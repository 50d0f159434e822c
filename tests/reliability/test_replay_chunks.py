"""The part of replay that every store shares: chunked republishing, the order of the store's
requeue step and the publish, the report, and the scan gate of the BigQuery path."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from tagpipe.models import DeliveryTask
from tagpipe.ops import replay
from tagpipe.ops.cli import _confirm_scan
from tagpipe.storage.base import Selection
from tagpipe.storage.bigquery_read import human_bytes, scan_cost
from tagpipe.transport.base import DELIVERIES


class Journal:
    """A bus and a source that write what happens, in order, to one list."""

    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows
        self.log: list[tuple] = []

    # Bus
    def publish_many(self, topic, items):
        self.log.append(("publish", topic, [json.loads(d)["event_uid"] for d, _ in items],
                         {a["destination"] for _, a in items}))
        return [str(i) for i in range(len(items))]

    # Source
    def dead_letters(self, destination, since, until):
        self.log.append(("select", destination, since, until))
        return Selection(len(self.rows), iter(self.rows))

    def requeue(self, rows, tasks):
        self.log.append(("requeue", len(rows), [t.event_uid for t in tasks]))

    def close(self):
        self.log.append(("close",))


def task_json(i: int) -> str:
    return DeliveryTask(event_uid=f"h{i}:0", hit_id=f"h{i}", event_id=f"e{i}", event_name="Purchase",
                        event_time=1.0, destination="meta", payload={}).model_dump_json()


class FakeRuntime:
    def __init__(self, journal: Journal) -> None:
        self.bus = journal


def test_a_large_selection_is_republished_in_chunks_after_each_requeue(monkeypatch):
    rows = [(i, task_json(i)) for i in range(1203)]
    rows[700] = (700, "{not json")
    journal = Journal(rows)
    monkeypatch.setattr(replay, "source_for", lambda rt, confirm=None: journal)
    seen: list[tuple[int, int]] = []
    report = replay.replay_dead_letters(FakeRuntime(journal), "meta", 10.0, 20.0,
                                        progress=lambda done, total: seen.append((done, total)))
    assert (report.selected, report.queued, report.skipped) == (1203, 1202, 1)
    assert seen == [(500, 1203), (1000, 1203), (1203, 1203)]
    kinds = [entry[0] for entry in journal.log]
    assert kinds == ["select", "requeue", "publish", "requeue", "publish", "requeue", "publish", "close"]
    assert journal.log[0] == ("select", "meta", 10.0, 20.0)
    publishes = [entry for entry in journal.log if entry[0] == "publish"]
    assert [len(p[2]) for p in publishes] == [500, 499, 203]
    assert all(p[1] == DELIVERIES and p[3] == {"meta"} for p in publishes)
    assert "h700:0" not in publishes[1][2]


def test_nothing_selected_still_ends_the_progress_bar_and_closes(monkeypatch):
    journal = Journal([])
    monkeypatch.setattr(replay, "source_for", lambda rt, confirm=None: journal)
    seen: list[tuple[int, int]] = []
    report = replay.replay_dead_letters(FakeRuntime(journal), progress=lambda d, t: seen.append((d, t)))
    assert (report.selected, report.queued) == (0, 0) and seen == [(0, 0)]
    assert [e[0] for e in journal.log] == ["select", "close"]


def args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"max_scan_gb": 1.0, "yes": False, **kw})


def test_scan_gate(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: no prompt, refuse
    assert _confirm_scan(args())("replay: dead_letters", 2**30) is True  # at the limit
    assert _confirm_scan(args())("replay: dead_letters", 2**30 + 1) is False
    assert "pass --yes" in capsys.readouterr().err
    assert _confirm_scan(args(yes=True))("backfill: events", 50 * 2**40) is True
    assert _confirm_scan(args(max_scan_gb=100))("backfill: events", 50 * 2**30) is True


def test_scan_gate_asks_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Tty(""))
    answers = iter(["y", ""])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    gate = _confirm_scan(args())
    assert gate("backfill: events", 2 * 2**30) is True
    assert gate("backfill: events", 2 * 2**30) is False  # the default answer is no


@pytest.mark.parametrize(("n", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.50 KiB"),
                                         (3 * 2**30, "3.00 GiB"), (2**50, "1024.00 TiB")])
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def test_scan_cost_bills_at_least_10_mb_per_table():
    assert scan_cost(0, tables=2) == pytest.approx(20 * 2**20 / 2**40 * 6.25)
    assert scan_cost(2**40) == pytest.approx(6.25)


def test_the_operator_needs_no_vendor_token(tmp_path, monkeypatch, capsys):
    """Routing and republishing never use a secret (deliver does, with its own): a backfill to Meta
    runs without META_ACCESS_TOKEN, and no placeholder is left in the environment."""
    from tagpipe.ops.cli import main

    monkeypatch.delenv("META_ACCESS_TOKEN", raising=False)
    cfg = tmp_path / "tagpipe.toml"
    cfg.write_text(f'[storage]\ndir = "{tmp_path / "data"}"\n\n[destinations.meta]\ntype = "meta"\n'
                   'pixel_id = "123"\naccess_token_env = "META_ACCESS_TOKEN"\n')
    assert main(["--config", str(cfg), "backfill", "meta", "--since", "1d"]) == 0
    assert "stored events 0, queued for meta 0" in capsys.readouterr().out
    assert main(["--config", str(cfg), "replay", "--since", "1d"]) == 0
    import os

    assert "META_ACCESS_TOKEN" not in os.environ
