"""The reason registry and settle_outcomes: one outcome per pair, a repeat counted apart, never logged as written."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import ValidationError

from tagpipe import reasons
from tagpipe.errors import InvalidInput
from tagpipe.models import Outcome, OutcomeKind
from tagpipe.pipeline.outcomes import settle_outcomes
from tagpipe.storage.sqlite import SqliteStore


def test_unregistered_reason_is_refused_by_outcome_and_invalid_input():
    with pytest.raises(ValidationError, match="not in the registry"):
        Outcome(hit_id="h", outcome=OutcomeKind.FILTERED, reason="made_up_reason")
    with pytest.raises(reasons.UnknownReason):
        InvalidInput("made_up_reason", "x")
    assert Outcome(hit_id="h", outcome=OutcomeKind.REJECTED, reason="meta:190").reason == "meta:190"


def test_a_family_prefix_alone_is_not_a_code():
    assert reasons.lookup("meta:") is None
    assert reasons.lookup("http:503").code == "http:5"
    assert reasons.lookup("http:418").code == "http:"


def test_every_registered_code_has_a_known_kind_and_the_file_is_the_registry():
    data = json.loads(reasons.REGISTRY_FILE.read_text())
    assert set(reasons.codes()) == set(data["codes"])
    assert all(r.kind in reasons.KINDS for r in reasons.codes().values())
    assert reasons.is_unexpected(reasons.SECOND_OUTCOME)
    assert not reasons.is_unexpected("consent")


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path)
    yield s
    s.close()


def _lines(caplog, message):
    return [r for r in caplog.records if r.getMessage() == message]


def test_a_second_outcome_for_a_pair_is_not_logged_as_written(store, caplog):
    first = Outcome(hit_id="h1", event_uid="e1", destination="meta", outcome=OutcomeKind.DELIVERED)
    second = Outcome(hit_id="h1", event_uid="e1", destination="meta", outcome=OutcomeKind.DEAD_LETTERED,
                     reason="timeout")
    other = Outcome(hit_id="h1", event_uid="e1", destination="ga4", outcome=OutcomeKind.FILTERED, reason="consent")
    caplog.set_level(logging.INFO, logger="tagpipe.outcomes")

    assert settle_outcomes(store, [first], stage="deliver") == [first]
    caplog.clear()
    written = settle_outcomes(store, [second, other], stage="deliver")

    assert written == [other]
    assert [r.outcome for r in _lines(caplog, "outcome_counts")] == ["filtered"]
    (unexpected,) = _lines(caplog, "unexpected_outcome_counts")
    assert (unexpected.reason, unexpected.outcome, unexpected.outcome_reason, unexpected.count) == (
        "second_outcome", "dead_lettered", "timeout", 1)
    # the store still holds the first outcome of the pair; the repeat is a failed event
    assert sorted(store.outcomes_for_hit("h1")) == [("e1", "ga4", "filtered", "consent", ""),
                                                    ("e1", "meta", "delivered", "", "")]
    rows = store.query("SELECT stage, destination, error_code FROM failed_events WHERE hit_id = 'h1'")
    assert rows == [("deliver", "meta", "second_outcome")]


def test_weight_multiplies_the_logged_count(store, caplog):
    caplog.set_level(logging.INFO, logger="tagpipe.outcomes")
    settle_outcomes(store, [Outcome(hit_id="h2", outcome=OutcomeKind.REJECTED, reason="rate_limited")],
                    stage="collect", weight=40)
    (line,) = _lines(caplog, "outcome_counts")
    assert (line.count, line.unexpected) == (40, False)
