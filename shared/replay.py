"""Replay dead letters, and backfill a destination from stored canonical events.

Both are idempotent: deliver never sends the same (event name, event_id) twice to a destination,
so running a replay or a backfill twice sends nothing new the second time.

    replay_dead_letters  re-queue deliveries that were dead-lettered (after fixing the cause: a new
                         access token, a vendor outage over). Their dead_lettered outcome is
                         replaced by the outcome of the new attempt.
    backfill             route stored events from a time range to one destination (a destination
                         added later, or an outage longer than the retry window).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from shared.models import DeliveryTask, Event
from shared.runtime import Runtime
from shared.storage.sqlite import SqliteStore
from shared.transport.base import DELIVERIES

Progress = Callable[[int, int], None]
CHUNK = 500


@dataclass
class ReplayReport:
    selected: int = 0
    queued: int = 0
    skipped: int = 0  # filtered or rejected on the way (consent, not mapped, invalid)


def progress_bar(label: str) -> Progress:
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _store(rt: Runtime) -> SqliteStore:
    if not isinstance(rt.store, SqliteStore):
        raise SystemExit("replay and backfill read the local store; on GCP query the dead_letters table (docs/gcp.md)")
    return rt.store


def replay_dead_letters(rt: Runtime, destination: str | None = None, since: float = 0.0,
                        until: float | None = None, progress: Progress | None = None) -> ReplayReport:
    store = _store(rt)
    sql = ("SELECT id, payload FROM failed_events WHERE error_code = 'dead_lettered' AND stage = 'deliver'"
           " AND replayed_at IS NULL AND at >= ? AND at < ?")
    params: list = [since, until or 1e12]
    if destination:
        sql += " AND destination = ?"
        params.append(destination)
    rows = store.query(sql + " ORDER BY id", params)
    report = ReplayReport(selected=len(rows))
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        tasks = []
        for _, payload in chunk:
            try:
                tasks.append(DeliveryTask.model_validate_json(payload))
            except ValueError:
                report.skipped += 1
        # the old outcome gives way to the new attempt's (still one outcome per pair)
        store._write(lambda c, tasks=tasks, chunk=chunk: (
            c.executemany(
                "DELETE FROM outcomes WHERE hit_id = ? AND event_uid = ? AND destination = ? AND outcome = 'dead_lettered'",
                [(t.hit_id, t.event_uid, t.destination) for t in tasks]),
            c.executemany("UPDATE failed_events SET replayed_at = strftime('%s','now') WHERE id = ?",
                          [(row_id,) for row_id, _ in chunk]),
        ))
        rt.bus.publish_many(DELIVERIES, [(t.model_dump_json().encode(), {"destination": t.destination}) for t in tasks])
        report.queued += len(tasks)
        if progress:
            progress(min(start + CHUNK, len(rows)), len(rows))
    if progress and not rows:
        progress(0, 0)
    return report


def backfill(rt: Runtime, destination: str, since: float, until: float,
             progress: Progress | None = None) -> ReplayReport:
    from shared.pipeline.transform import Transformer

    store = _store(rt)
    if destination not in rt.destinations:
        raise SystemExit(f"no enabled destination {destination!r} (have: {', '.join(rt.destinations)})")
    rows = store.query("SELECT doc FROM events WHERE ts >= ? AND ts < ? ORDER BY ts", (since, until))
    report = ReplayReport(selected=len(rows))
    transformer = Transformer(rt)
    for start in range(0, len(rows), CHUNK):
        tasks: list[DeliveryTask] = []
        for (doc,) in rows[start : start + CHUNK]:
            event = Event.model_validate_json(doc)
            routed, _ = transformer.route(event)
            mine = [t for t in routed if t.destination.split("#")[0] == destination]
            report.skipped += 0 if mine else 1
            tasks += mine
        rt.bus.publish_many(DELIVERIES, [(t.model_dump_json().encode(), {"destination": t.destination}) for t in tasks])
        report.queued += len(tasks)
        if progress:
            progress(min(start + CHUNK, len(rows)), len(rows))
    return report
