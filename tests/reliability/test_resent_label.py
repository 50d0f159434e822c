"""Item 10 of issue 14: an event whose attempt was interrupted (a crash or a timeout after the request
left) keeps its "resent" label through a retry that gets an HTTP error, so the delivery that finally
succeeds says it may be a second copy. Real local queue and store, the fake webhook."""

from __future__ import annotations

from tagpipe.pipeline.deliver import RESENT_NOTE, Deliverer
from tests.e2e.stack import wait_until
from tests.unit.test_dedup_scope import env, run_stage, send  # noqa: F401  (env: the fixture)


def _hook_outcome(rt):
    rows = rt.store.query("SELECT outcome, detail FROM outcomes WHERE destination = 'hook'")
    return rows[0] if rows else None


def test_the_resent_label_survives_a_retry_that_got_an_http_error(env):  # noqa: F811
    build, fakes = env
    rt = build("min_backoff = 0.01\nmax_backoff = 0.01")
    # a previous process sent purchase o-9 and was killed before it saw the answer: its journal entry stays
    rt.store.mark_inflight("hook", ["purchase:o-9"])
    fakes.webhook.fail_next(1, status=500)  # the first retry after the crash is answered with an error
    send(rt, "purchase", "o-9")
    assert _hook_outcome(rt) is None and fakes.webhook.count == 0
    outcome = wait_until(lambda: run_stage(rt, Deliverer(rt)) >= 0 and _hook_outcome(rt), what="the retry delivered")
    assert outcome[0] == "delivered" and RESENT_NOTE in outcome[1]
    assert rt.store.query("SELECT 1 FROM inflight WHERE destination = 'hook'") == []  # settled: the journal is clear


def test_a_first_attempt_that_got_an_http_error_is_not_labelled_resent(env):  # noqa: F811
    build, fakes = env
    rt = build("min_backoff = 0.01\nmax_backoff = 0.01")
    fakes.webhook.fail_next(1, status=500)
    send(rt, "purchase", "o-10")
    outcome = wait_until(lambda: run_stage(rt, Deliverer(rt)) >= 0 and _hook_outcome(rt), what="the retry delivered")
    assert outcome[0] == "delivered" and RESENT_NOTE not in outcome[1]  # the vendor refused the only copy
