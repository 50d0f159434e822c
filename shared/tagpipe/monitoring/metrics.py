"""The read model the alert rules and the dashboard share: counts over time windows of the store.

Reads only the store's monitoring helpers (SqliteStore.outcome_breakdown, hit_count, ...). Windows
are [since, until) in unix seconds; one Metrics object memoises its queries, so an evaluation cycle
or a dashboard request that asks for the same window twice reads the store once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from tagpipe import reasons
from tagpipe.models import HIT_LEVEL

DAY = 86400.0
WEEK = 7 * DAY
FAILED = ("rejected", "dead_lettered")
KINDS = ("delivered", "filtered", "rejected", "dead_lettered")


@dataclass(frozen=True)
class Row:
    destination: str
    outcome: str
    reason: str
    event_name: str
    count: int
    detail: str


@dataclass
class DestStats:
    delivered: int = 0
    filtered: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    filtered_by: Counter = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return self.rejected + self.dead_lettered

    @property
    def final(self) -> int:
        """Outcomes that tried to reach the vendor (filtered ones are on purpose, not failures)."""
        return self.delivered + self.failed

    @property
    def failure_rate(self) -> float:
        return self.failed / self.final if self.final else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "filtered": self.filtered, "rejected": self.rejected,
                "dead_lettered": self.dead_lettered, "failure_rate": round(self.failure_rate, 4),
                "duplicate": self.filtered_by.get("duplicate", 0), "consent": self.filtered_by.get("consent", 0)}


@dataclass
class Reason:
    reason: str
    outcome: str
    count: int
    detail: str
    destination: str = ""


class Metrics:
    def __init__(self, store: Any, now: float) -> None:
        self.store = store
        self.now = now
        self._cache: dict[tuple, Any] = {}

    def _memo(self, key: tuple, fn):
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    # -- outcomes
    def rows(self, since: float, until: float) -> list[Row]:
        return self._memo(("rows", since, until),
                          lambda: [Row(*r) for r in self.store.outcome_breakdown(since, until)])

    def dest_stats(self, since: float, until: float) -> dict[str, DestStats]:
        """Per destination (hit-level outcomes, destination '*', are left out)."""
        def build():
            stats: dict[str, DestStats] = defaultdict(DestStats)
            for r in self.rows(since, until):
                if r.destination == HIT_LEVEL:
                    continue
                s = stats[r.destination]
                setattr(s, r.outcome, getattr(s, r.outcome, 0) + r.count)
                if r.outcome == "filtered":
                    s.filtered_by[r.reason] += r.count
            return dict(stats)

        return self._memo(("dest", since, until), build)

    def reasons(self, since: float, until: float, destination: str | None = None,
                outcomes: tuple[str, ...] = FAILED) -> list[Reason]:
        """Grouped by (destination, outcome, reason), largest first."""
        grouped: dict[tuple[str, str, str], Reason] = {}
        for r in self.rows(since, until):
            if r.outcome not in outcomes or (destination is not None and r.destination != destination):
                continue
            key = (r.destination, r.outcome, r.reason)
            g = grouped.get(key)
            if g is None:
                grouped[key] = Reason(r.reason, r.outcome, r.count, r.detail, r.destination)
            else:
                g.count += r.count
        return sorted(grouped.values(), key=lambda g: (-g.count, g.reason))

    def event_names(self, since: float, until: float, destination: str,
                    outcomes: tuple[str, ...] = ("delivered", *FAILED)) -> Counter:
        names: Counter = Counter()
        for r in self.rows(since, until):
            if r.destination == destination and r.outcome in outcomes:
                names[r.event_name] += r.count
        return names

    def collect_rejections(self, since: float, until: float) -> list[Reason]:
        """Refused hits; requests that were no hit at all (reasons marked noise) are counted, not here."""
        return [r for r in self.reasons(since, until, HIT_LEVEL, ("rejected",)) if not reasons.is_noise(r.reason)]

    # -- hits
    def hits(self, since: float, until: float) -> int:
        return self._memo(("hits", since, until), lambda: int(self.store.hit_count(since, until)))

    def last_hit_at(self) -> float | None:
        return self._memo(("last_hit",), lambda: self.store.last_hit_at(self.now + 1))

    # -- match keys: one read of the delivered outcomes' identifiers serves the shares and the estimate
    def _identifier_rows(self, since: float, until: float) -> list[tuple]:
        return self._memo(("ident_rows", since, until), lambda: self.store.identifier_counts_by_event(since, until))

    def match_quality(self, since: float, until: float, types: dict[str, str]) -> dict[tuple[str, str], tuple[int, float]]:
        """(destination, event name) -> (delivered events, average estimated match quality 0-10)."""
        from tagpipe.monitoring.match_quality import average_scores

        return self._memo(("emq", since, until), lambda: average_scores(self._identifier_rows(since, until), types))

    def identifier_shares(self, since: float, until: float) -> dict[str, tuple[int, Counter]]:
        """Per destination: (delivered events, Counter of match keys carried)."""
        def build():
            out: dict[str, tuple[int, Counter]] = {}
            for dest, _name, idents, n in self._identifier_rows(since, until):
                total, keys = out.get(dest, (0, Counter()))
                for key in filter(None, (idents or "").split(",")):
                    keys[key] += n
                out[dest] = (total + n, keys)
            return out

        return self._memo(("idents", since, until), build)
