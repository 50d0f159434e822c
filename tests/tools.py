"""A test tool that is missing: a skip on a developer's machine, a failure where it must be there.

scripts/tools.sh installs checkov and promql-parser (PyPI) for `make test`; terraform comes from the
machine. TAGPIPE_REQUIRE_TOOLS=1 (.ci/run) turns a missing checkov or promql-parser into a failure,
TAGPIPE_REQUIRE_TERRAFORM=1 a missing terraform, as TAGPIPE_REQUIRE_EMULATORS does for the emulators.
"""

from __future__ import annotations

import os

import pytest

FLAGS = {"terraform": "TAGPIPE_REQUIRE_TERRAFORM", "checkov": "TAGPIPE_REQUIRE_TOOLS", "promql": "TAGPIPE_REQUIRE_TOOLS"}


def missing(tool: str, reason: str) -> None:
    flag = FLAGS[tool]
    if os.environ.get(flag) == "1":
        pytest.fail(f"{reason} ({flag}=1, so this is a failure, not a skip)")
    pytest.skip(reason)
