"""Golden fixtures of the Segment source: tests/fixtures/segment/<case>.input.json -> <case>.output.json.

As tests/parsing/test_golden.py (outputs as stored: None fields left out, as tests/parsing/test_shopify.py
writes them), and an input may give its body as the object `_body` (sent as its JSON) so the
spec's examples stay readable. `UPDATE_GOLDEN=1 pytest tests/parsing/test_segment_golden.py` rewrites the outputs:
review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tagpipe.models import RawHit
from tests.parsing.test_shopify import run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "segment"
CASES = sorted(FIXTURES.glob("*.input.json"))


def load_raw(path: Path) -> RawHit:
    data = json.loads(path.read_text())
    if "_body" in data:
        data["body"] = json.dumps(data["_body"])
    return RawHit.model_validate({k: v for k, v in data.items() if not k.startswith("_")})


def test_there_are_fixtures_of_both_kinds() -> None:
    names = [case.name for case in CASES]
    assert any(n.startswith("error_") for n in names) and any(not n.startswith("error_") for n in names)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name.removesuffix(".input.json"))
def test_golden(case: Path) -> None:
    got = run(load_raw(case))
    out = case.with_name(case.name.replace(".input.json", ".output.json"))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        out.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert out.exists(), f"{out.name} is missing: run UPDATE_GOLDEN=1 pytest tests/parsing/test_segment_golden.py"
    assert got == json.loads(out.read_text())
    assert run(load_raw(case)) == got  # deterministic: collect validates and transform rebuilds the same events


def test_no_orphan_outputs() -> None:
    for out in FIXTURES.glob("*.output.json"):
        assert out.with_name(out.name.replace(".output.json", ".input.json")).exists(), out
