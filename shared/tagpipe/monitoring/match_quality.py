"""An estimate of event match quality per destination and event name, from the match keys each delivered
event carried (the `identifiers` of its outcome).

This is tagpipe's estimate, not the vendor's score. Meta shows an Event Match Quality score (0-10) in
Events Manager and documents which customer-information parameters raise it, strongest first ([doc]
developers.facebook.com/docs/marketing-api/conversions-api/best-practices, "Event Match Quality":
email, phone, external ID, click ID fbc, browser ID fbp, IP address with user agent, then name, city,
state, zip, country), but publishes no weights. The weights (match_quality.json, read by Terraform's
monitoring module too, so the GCP alert scores alike) follow that order; an event carrying every Meta
key scores 10. Google's click ids (one of gclid / gbraid / wbraid is sent) weigh 4.4, so a click id with
email, phone and name is 10; TikTok's ttclid and ttp likewise. [unverified] that any vendor weighs them
so: the point is the trend, a drop means the site stopped passing something.

One weight table for every vendor keeps the score a plain weighted sum of key shares, which is what a
PromQL policy can compute from the per-key counts deliver logs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

_DATA = json.loads(Path(__file__).with_name("match_quality.json").read_text())
WEIGHTS: dict[str, float] = _DATA["weights"]
SCORED_TYPES = frozenset(_DATA["scored_types"])  # GA4 and webhooks: match quality means nothing there


def event_score(keys: Iterable[str]) -> float:
    """0-10 for one event's match keys."""
    return min(10.0, round(sum(WEIGHTS.get(k, 0.0) for k in set(keys)), 6))


def average_scores(rows: Iterable[tuple[str, str | None, str, int]],
                   types: dict[str, str]) -> dict[tuple[str, str], tuple[int, float]]:
    """(destination, event name) -> (delivered events, average estimated score), from
    (destination, event name, comma-joined identifiers, count) rows; unscored destination types left out."""
    sums: dict[tuple[str, str], list[float]] = {}
    for dest, name, identifiers, n in rows:
        if types.get(dest, dest) not in SCORED_TYPES:
            continue
        score = event_score(filter(None, (identifiers or "").split(",")))
        entry = sums.setdefault((dest, name or "?"), [0, 0.0])
        entry[0] += n
        entry[1] += score * n
    return {key: (int(n), round(total / n, 2)) for key, (n, total) in sums.items() if n}
