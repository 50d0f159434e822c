"""The registry of outcome reason codes (as Sentry Relay's outcome reasons and vector's drop events).

Each code is defined once, in reasons.json beside this module (Terraform's monitoring module reads
the same file for the credential codes its alert matches): the outcome kind it ends in, the words a
marketer reads, whether it is *unexpected* (a bug or a loss: a queued message that cannot be read,
a second outcome for one (event, destination)) and whether renewing credentials fixes it. Vendor and
HTTP codes come in families by prefix ("meta:", "http:5"): a vendor's own code is registered by its
family, the codes tagpipe explains in words one by one.

Outcome and InvalidInput refuse a code the registry does not know, so a new code is added here
first, with its words, or the stage that makes it fails its tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REGISTRY_FILE = Path(__file__).with_name("reasons.json")
KINDS = ("delivered", "filtered", "rejected", "dead_lettered", "any")


@dataclass(frozen=True)
class Reason:
    code: str  # the code, or a family's prefix
    kind: str  # one of KINDS; "any": rejected or dead-lettered, as the verdict and the attempt say
    words: str | None = None  # what happened ({name}: the destination, {status}: an HTTP status)
    unexpected: bool = False
    credentials: bool = False
    noise: bool = False  # not a hit at all (a crawler's /robots.txt, a probe's TRACE): counted, never alerted on


class UnknownReason(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(f"reason code {code!r} is not in the registry (tagpipe/reasons.json)")


def _no_repeats(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if repeated := sorted({k for k in keys if keys.count(k) > 1}):
        raise ValueError(f"reasons.json defines {repeated} twice")
    return dict(pairs)


@cache
def _registry() -> tuple[dict[str, Reason], tuple[Reason, ...]]:
    data = json.loads(REGISTRY_FILE.read_text(), object_pairs_hook=_no_repeats)
    codes = {code: Reason(code, **spec) for code, spec in data["codes"].items()}
    families = tuple(sorted((Reason(prefix, **spec) for prefix, spec in data["families"].items()),
                            key=lambda r: -len(r.code)))
    for r in (*codes.values(), *families):
        if r.kind not in KINDS:
            raise ValueError(f"reasons.json: {r.code}: kind {r.kind!r} is not one of {KINDS}")
    return codes, families


def codes() -> dict[str, Reason]:
    return dict(_registry()[0])


def lookup(code: str) -> Reason | None:
    """The code's own entry, else its family's (the longest matching prefix), else None."""
    exact, families = _registry()
    if code in exact:
        return exact[code]
    return next((f for f in families if code.startswith(f.code) and len(code) > len(f.code)), None)


def require(code: str) -> str:
    if lookup(code) is None:
        raise UnknownReason(code)
    return code


def words(code: str, name: str = "the destination") -> str | None:
    reason = lookup(code)
    if reason is None or reason.words is None:
        return None
    status = code.rpartition(":")[2]
    return reason.words.replace("{name}", name).replace("{status}", status)


def is_noise(code: str) -> bool:
    reason = lookup(code)
    return reason is not None and reason.noise


def is_unexpected(code: str) -> bool:
    reason = lookup(code)
    return reason is None or reason.unexpected


def credential_codes() -> list[str]:
    return sorted(c for c, r in _registry()[0].items() if r.credentials)


SECOND_OUTCOME = require("second_outcome")
INVALID_MESSAGE = require("invalid_message")
INVALID_TASK = require("invalid_task")
