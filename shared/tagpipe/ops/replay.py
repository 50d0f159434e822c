"""Replay dead letters, and backfill a destination from stored canonical events.

Both are idempotent: deliver never sends the same (event name, event_id) twice to a destination,
so running a replay or a backfill twice sends nothing new the second time.

    replay_dead_letters  re-queue deliveries that were dead-lettered (after fixing the cause: a new
                         access token, a vendor outage over). Their dead_lettered outcome is
                         replaced by the outcome of the new attempt.
    backfill             route stored events from a time range to one destination (a destination
                         added later, or an outage longer than the retry window).

Where the candidates come from depends on the store; the rest (parse, route, republish onto the
deliveries topic through the runtime's Bus in chunks, progress, report) is shared:

    SqliteReplaySource        the local store (tagpipe.storage.sqlite): failed_events, events
    BigQueryReplaySource      BigQuery on Google Cloud (tagpipe.storage.bigquery_read): dead_letters,
                              events, minus what outcomes says is done; dry-run and confirm first

Both implement tagpipe.storage.base.ReplaySource.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from tagpipe.models import DeliveryTask, Event
from tagpipe.runtime import Runtime
from tagpipe.storage.base import Confirm, ReplaySource, Selection
from tagpipe.storage.sqlite import SqliteReplaySource, SqliteStore
from tagpipe.transport.base import DELIVERIES

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


def source_for(rt: Runtime, confirm: Confirm | None = None) -> ReplaySource:
    if isinstance(rt.store, SqliteStore):
        return SqliteReplaySource(rt.store)
    from tagpipe.storage.bigquery import BigQueryStore

    if isinstance(rt.store, BigQueryStore):
        from tagpipe.storage.bigquery_read import BigQueryReplaySource

        return BigQueryReplaySource(rt.store, confirm)
    raise SystemExit(f"replay and backfill cannot read a {type(rt.store).__name__}")


def _chunks(rows: Iterable[tuple]) -> Iterator[list[tuple]]:
    it = iter(rows)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


def _republish(rt: Runtime, tasks: Sequence[DeliveryTask]) -> None:
    rt.bus.publish_many(DELIVERIES, [(t.model_dump_json().encode(), {"destination": t.destination}) for t in tasks])


ToTasks = Callable[[list[tuple], ReplayReport], list[DeliveryTask]]
Requeue = Callable[[list[tuple], list[DeliveryTask]], None]


def _run(rt: Runtime, selection: Selection, to_tasks: ToTasks, progress: Progress | None,
         before: Requeue | None = None) -> ReplayReport:
    """Republish the selection chunk by chunk; `before` runs on each chunk ahead of its publish."""
    report = ReplayReport(selected=selection.total)
    done = 0
    for chunk in _chunks(selection.rows):
        tasks = to_tasks(chunk, report)
        if before is not None:
            before(chunk, tasks)
        _republish(rt, tasks)
        report.queued += len(tasks)
        done += len(chunk)
        if progress:
            progress(min(done, selection.total), selection.total)
    if progress and not done:
        progress(0, 0)
    return report


def replay_dead_letters(rt: Runtime, destination: str | None = None, since: float = 0.0,
                        until: float | None = None, progress: Progress | None = None,
                        confirm: Confirm | None = None) -> ReplayReport:
    source = source_for(rt, confirm)

    def to_tasks(chunk: list[tuple], report: ReplayReport) -> list[DeliveryTask]:
        tasks = []
        for _, payload in chunk:
            try:
                tasks.append(DeliveryTask.model_validate_json(payload or ""))
            except ValueError:
                report.skipped += 1
        return tasks

    try:
        return _run(rt, source.dead_letters(destination, since, until or 1e12), to_tasks, progress, source.requeue)
    finally:
        source.close()


def backfill(rt: Runtime, destination: str, since: float, until: float,
             progress: Progress | None = None, confirm: Confirm | None = None) -> ReplayReport:
    from tagpipe.pipeline.transform import Transformer

    if destination not in rt.destinations:
        raise SystemExit(f"no enabled destination {destination!r} (have: {', '.join(rt.destinations)})")
    source = source_for(rt, confirm)
    transformer = Transformer(rt)

    def to_tasks(chunk: list[tuple], report: ReplayReport) -> list[DeliveryTask]:
        tasks: list[DeliveryTask] = []
        for (doc,) in chunk:
            routed, _ = transformer.route(Event.model_validate_json(doc))
            mine = [t for t in routed if t.destination.split("#")[0] == destination]
            report.skipped += 0 if mine else 1
            tasks += mine
        return tasks

    try:
        return _run(rt, source.events(destination, since, until), to_tasks, progress)
    finally:
        source.close()
