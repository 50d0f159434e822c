"""Golden tests: sample hits x example configs -> tag firings and the exact vendor requests.

Each case runs parse -> route -> prepare -> build_requests through tagpipe.ops.preview (nothing is sent)
with the real destinations, and compares with expected.json. UPDATE_GOLDEN=1 rewrites the files; read the
diff before committing it. Format: tests/fixtures/tagging/README.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tagpipe.config import load_config
from tagpipe.ops.preview import entry_hit, preview, secret_env_names

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "tagging"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "hits.json").exists())
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z: every hit's received_at and the destinations' clock
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _entry(entry: dict) -> dict:
    if "file" not in entry:
        return entry
    data = json.loads((ROOT / entry["file"]).read_text())
    base = data if isinstance(data, dict) and any(k in data for k in ("gtag", "json", "hit")) else {"json": data}
    return {**base, **{k: v for k, v in entry.items() if k != "file"}}


@pytest.mark.parametrize("case", CASES)
def test_golden(case, monkeypatch):
    spec = json.loads((FIXTURES / case / "hits.json").read_text())
    config_file = Path(spec["config"]) if "config" in spec else (FIXTURES / case / "config.toml").relative_to(ROOT)
    monkeypatch.chdir(ROOT)  # the report names the config by this relative path
    secrets = {name: f"golden-secret-{name.lower()}" for name in secret_env_names(config_file)}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    config = load_config(config_file)
    hits = [entry_hit(_entry(e), i, NOW) for i, e in enumerate(spec["hits"])]
    report = preview(config, hits)
    text = json.dumps(report, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    for value in secrets.values():
        assert value not in text, "a secret leaked into the preview"
    expected_file = FIXTURES / case / "expected.json"
    if UPDATE or not expected_file.exists():
        expected_file.write_text(text)
        if not UPDATE:
            pytest.fail(f"{expected_file} did not exist: written, check it and run again")
    assert json.loads(text) == json.loads(expected_file.read_text())


def test_every_example_config_has_a_golden_case():
    named = {json.loads((FIXTURES / c / "hits.json").read_text()).get("config") for c in CASES}
    examples = {f"examples/{p.name}" for p in (ROOT / "examples").glob("*.toml")} | {"tagpipe.example.toml"}
    assert examples <= named, f"no golden case for {sorted(examples - named)}"
