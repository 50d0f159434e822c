"""Golden fixtures: tests/fixtures/{gtag,mp,json}/<case>.input.json -> <case>.output.json.

An input is a RawHit as JSON; keys starting with '_' (_source, _note) are documentation. An output is
the list of Event dicts (model_dump(mode="json")), or {"error": {code, status, message}} for a hit
that parse_hit refuses. `UPDATE_GOLDEN=1 pytest tests/parsing` rewrites the outputs: review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tagpipe.errors import InvalidInput
from tagpipe.models import RawHit
from tagpipe.parsing import parse_hit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SOURCES = ("gtag", "mp", "json")
CASES = sorted(p for source in SOURCES for p in (FIXTURES / source).glob("*.input.json"))


def load_raw(path: Path) -> RawHit:
    data = json.loads(path.read_text())
    return RawHit.model_validate({k: v for k, v in data.items() if not k.startswith("_")})


def run(raw: RawHit) -> object:
    try:
        return [e.model_dump(mode="json") for e in parse_hit(raw)]
    except InvalidInput as e:
        return {"error": {"code": e.code, "status": e.status, "message": e.message}}


def test_every_source_has_fixtures() -> None:
    for source in SOURCES:
        assert list((FIXTURES / source).glob("*.input.json")), f"no fixtures for {source}"


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name.removesuffix('.input.json')}")
def test_golden(case: Path) -> None:
    raw = load_raw(case)
    got = run(raw)
    out = case.with_name(case.name.replace(".input.json", ".output.json"))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        out.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert out.exists(), f"{out.name} is missing: run UPDATE_GOLDEN=1 pytest tests/parsing and review it"
    assert got == json.loads(out.read_text())
    # deterministic: the same RawHit gives the same events (collect validates, transform rebuilds)
    assert run(load_raw(case)) == got


def test_no_orphan_outputs() -> None:
    for source in SOURCES:
        for out in (FIXTURES / source).glob("*.output.json"):
            assert out.with_name(out.name.replace(".output.json", ".input.json")).exists(), out
