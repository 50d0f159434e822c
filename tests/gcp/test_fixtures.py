"""The emulator fixtures' contract: skip where an emulator is missing, fail instead under CI's flag."""

import pytest

from tests.gcp.conftest import unavailable


def test_missing_emulator_skips_with_the_reason(monkeypatch):
    monkeypatch.delenv("TAGPIPE_REQUIRE_EMULATORS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Pub/Sub emulator not found"):
        unavailable("Pub/Sub emulator not found: needs java")


def test_missing_emulator_fails_when_required(monkeypatch):
    monkeypatch.setenv("TAGPIPE_REQUIRE_EMULATORS", "1")
    with pytest.raises(pytest.fail.Exception, match="TAGPIPE_REQUIRE_EMULATORS=1"):
        unavailable("Pub/Sub emulator not found: needs java")


def test_bqemulator_has_its_own_flag(monkeypatch):
    monkeypatch.setenv("TAGPIPE_REQUIRE_EMULATORS", "1")
    monkeypatch.delenv("TAGPIPE_REQUIRE_BQEMULATOR", raising=False)
    with pytest.raises(pytest.skip.Exception):
        unavailable("bqemulator not installed", flag="TAGPIPE_REQUIRE_BQEMULATOR")
