"""Structured (JSON) logs, one object per line: what Cloud Logging parses into jsonPayload.

Log lines carry ids, codes and counts, never customer data. Outcome counts are logged per batch
(`outcome_counts`), and the match keys of delivered events (`match_key_counts`), which Cloud
Monitoring turns into log-based metrics for the alert policies (docs/monitoring.md).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable

from tagpipe import reasons
from tagpipe.models import Outcome
from tagpipe.privacy import mask_secret_params

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")
_secrets: set[str] = set()


def register_secrets(values) -> None:
    """Secret values (tokens, keys) that must never appear in a log line, whatever logs them."""
    _secrets.update(v for v in values if v and len(v) >= 6)


def mask_secrets(text: str) -> str:
    text = BEARER.sub("Bearer ***", mask_secret_params(text))
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(self._format(record))

    def _format(self, record: logging.LogRecord) -> str:
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


class _MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


def configure_from_environment() -> None:
    """TAGPIPE_LOG_LEVEL / TAGPIPE_LOG_FORMAT (tagpipe.settings); a bad value falls back to INFO / JSON
    with a warning rather than stopping the process before it can say why."""
    from tagpipe.errors import ConfigError
    from tagpipe.settings import Settings

    try:
        s = Settings.load()
    except ConfigError as exc:
        configure()
        logging.getLogger("tagpipe").warning("%s", exc)
        return
    configure(s.log_level, json_lines=s.log_format == "json")


def configure(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else _MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


_outcome_log = logging.getLogger("tagpipe.outcomes")


def log_outcomes(outcomes: Iterable[Outcome], weight: int = 1) -> None:
    """`weight`: how many requests each outcome stands for (collect's rate-limit summaries stand for many)."""
    outcomes = list(outcomes)
    counts = Counter((o.destination, o.outcome.value, o.reason) for o in outcomes)
    for (destination, outcome, reason), n in counts.items():
        _outcome_log.info("outcome_counts", extra={"destination": destination, "outcome": outcome,
                                                   "reason": reason, "count": n * weight,
                                                   "unexpected": bool(reason) and reasons.is_unexpected(reason)})
    # match keys carried by delivered events: the numerator of the match-quality alert on GCP
    # (the denominator is outcome_counts with outcome=delivered)
    keys = Counter((o.destination, key) for o in outcomes if o.outcome.value == "delivered" for key in o.identifiers)
    for (destination, key), n in keys.items():
        _outcome_log.info("match_key_counts", extra={"destination": destination, "key": key, "count": n})


def log_unexpected(outcomes: Iterable[Outcome], reason: str) -> None:
    """Outcomes that were not written for an unexpected `reason` (e.g. second_outcome), counted apart
    from outcome_counts: `outcome` / `outcome_reason` say what was not written."""
    counts = Counter((o.destination, o.outcome.value, o.reason) for o in outcomes)
    for (destination, outcome, outcome_reason), n in counts.items():
        _outcome_log.warning("unexpected_outcome_counts", extra={
            "destination": destination, "reason": reason, "outcome": outcome, "outcome_reason": outcome_reason,
            "count": n, "unexpected": True})
