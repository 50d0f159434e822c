"""Loads the golden tables in tests/fixtures/hashing/*.json (input -> normalised string -> SHA-256)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hashing"


def load(name: str) -> list[dict]:
    with open(FIXTURES / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


def params(name: str, key: str) -> list:
    """One pytest param per row, with a readable id (the input is test data, not real PII)."""
    out = []
    for i, row in enumerate(load(name)):
        ident = f"{i:03d}-{row[key]}-{row['input'][:24]!r}"
        out.append(pytest.param(row, id=ident))
    return out
