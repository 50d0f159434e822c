"""Structured (JSON) logs, one object per line: what Cloud Logging parses into jsonPayload.

Log lines carry ids, codes and counts, never customer data. Outcome counts are logged per batch
(`outcome_counts`), which Cloud Monitoring turns into log-based metrics for the alert policies.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from typing import Iterable

from shared.models import Outcome

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


_outcome_log = logging.getLogger("tagpipe.outcomes")


def log_outcomes(outcomes: Iterable[Outcome]) -> None:
    counts = Counter((o.destination, o.outcome.value, o.reason) for o in outcomes)
    for (destination, outcome, reason), n in counts.items():
        _outcome_log.info("outcome_counts", extra={"destination": destination, "outcome": outcome,
                                                   "reason": reason, "count": n})
