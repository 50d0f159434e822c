"""One event's evaluation state: what variables, triggers and tags read and memoise into."""

from __future__ import annotations

from typing import Any

from tagpipe.models import Event

UNSET = object()  # a variable slot not computed yet (None is a value)


class Evaluation:
    """One event's variable values and trigger results, computed on first use."""

    __slots__ = ("event", "values", "triggers")

    def __init__(self, event: Event, n_vars: int, n_triggers: int) -> None:
        self.event = event
        self.values: list[Any] = [UNSET] * n_vars
        self.triggers: list[bool | None] = [None] * n_triggers
