"""Alert rules against a store filled with outcomes, on an injected clock: fire once, stay quiet while
failing, one recovery; state survives a restart; every rule speaks plain words."""

from __future__ import annotations

import json

import pytest

from tagpipe.errors import ConfigError
from tagpipe.monitoring.alerts import STATE_FILE, AlertEvaluator
from tagpipe.monitoring.config import (
    BacklogAgeRule,
    CollectErrorRateRule,
    DeadLetterRule,
    DeliveryFailureRateRule,
    MatchKeysRule,
    MonitoringConfig,
    TrafficDropRule,
    load_monitoring_config,
    parse_monitoring,
)
from tests.monitoring.conftest import Recorder
from tests.monitoring.scenario import add, add_hits

TYPES = {"meta": "meta", "ga4": "ga4"}


def evaluator(store, tmp_path, clock, rules, notifiers, **kw):
    return AlertEvaluator(store, rules, notifiers, tmp_path / "data", clock=clock, destination_types=TYPES,
                          dashboard_url="http://127.0.0.1:8081", recovery_minutes=5, **kw)


def meta_baseline(store, now):
    """A week of Meta purchases failing 0.4% of the time (1 in 250)."""
    for k in range(1, 29):  # every 6 hours
        at = now - k * 6 * 3600
        add(store, "meta", "delivered", at, 249)
        add(store, "meta", "dead_lettered", at, 1, "http:503")


def test_failure_rate_fires_once_stays_quiet_then_recovers_once(store, tmp_path, clock):
    meta_baseline(store, clock.t)
    add(store, "meta", "delivered", clock.t - 300, 63, identifiers=["em"])
    add(store, "meta", "dead_lettered", clock.t - 200, 37, "meta:190", detail="access token expired or invalid (status=400)")
    rec = Recorder()
    ev = evaluator(store, tmp_path, clock, [DeliveryFailureRateRule()], [rec])

    ev.evaluate()
    assert len(rec.sent) == 1
    alert = rec.sent[0]
    assert alert.status == "firing" and alert.subject == "meta"
    assert alert.title == "Meta: 37% of purchases failed in the last 15 minutes (was 0.4%)"
    assert alert.summary == ("Meta: 37% of purchases failed in the last 15 minutes (was 0.4%) — the access token"
                             " expired (meta:190). Events are being kept and will be replayable.")
    assert alert.reasons[0] == {"text": "the access token expired", "code": "meta:190", "count": 37,
                                "outcome": "dead_lettered"}
    facts = dict(alert.facts)
    assert facts["Failed"] == "37% (37 of 100)" and facts["Usual (7 days)"] == "0.4%"
    assert facts["Volume"].startswith("100 in the last 15 minutes (usually ")

    # still failing, minutes later, with more failures: no second alert
    for _ in range(4):
        clock.advance(minutes=1)
        add(store, "meta", "dead_lettered", clock.t - 1, 10, "meta:190")
        ev.evaluate()
    assert len(rec.sent) == 1
    assert ev.active()[0].facts[1][1] == "55% (77 of 140)"  # the dashboard sees the latest numbers

    # fixed: the failures age out of the window, deliveries flow
    clock.advance(minutes=16)
    add(store, "meta", "delivered", clock.t - 60, 200)
    ev.evaluate()
    assert len(rec.sent) == 1  # fine, but not yet for recovery_minutes
    clock.advance(minutes=5)
    add(store, "meta", "delivered", clock.t - 60, 200)
    ev.evaluate()
    assert len(rec.sent) == 2
    resolved = rec.sent[1]
    assert resolved.status == "resolved"
    assert resolved.title == "Resolved: Meta: 37% of purchases failed in the last 15 minutes (was 0.4%)"
    assert resolved.summary.startswith("Meta: deliveries are back to normal — 0% failed in the last 15 minutes")
    assert "alerting for 25 minutes" in resolved.summary
    for _ in range(3):
        clock.advance(minutes=1)
        ev.evaluate()
    assert len(rec.sent) == 2 and ev.active() == []
    assert json.loads((tmp_path / "data" / STATE_FILE).read_text())["alerts"] == {}


def test_flapping_inside_the_recovery_period_sends_nothing(store, tmp_path, clock):
    add(store, "meta", "dead_lettered", clock.t - 60, 30, "http:503")
    rec = Recorder()
    ev = evaluator(store, tmp_path, clock, [DeliveryFailureRateRule(min_events=20)], [rec])
    ev.evaluate()
    clock.advance(minutes=16)
    add(store, "meta", "delivered", clock.t - 60, 100)
    ev.evaluate()  # ok, recovery period starts
    clock.advance(minutes=2)
    add(store, "meta", "dead_lettered", clock.t - 30, 50, "http:503")
    ev.evaluate()  # failing again before recovery: the same alert, no new message
    assert [a.status for a in rec.sent] == ["firing"]


def test_restart_does_not_refire_and_still_sends_the_recovery(store, tmp_path, clock):
    add(store, "ga4", "dead_lettered", clock.t - 60, 40, "http:503")
    rec = Recorder()
    evaluator(store, tmp_path, clock, [DeliveryFailureRateRule()], [rec]).evaluate()
    assert len(rec.sent) == 1 and rec.sent[0].title.startswith("GA4: 100% of purchases failed")

    clock.advance(minutes=1)
    restarted = evaluator(store, tmp_path, clock, [DeliveryFailureRateRule()], [rec])
    restarted.evaluate()
    assert len(rec.sent) == 1  # the state on disk says it was already sent

    clock.advance(minutes=20)
    add(store, "ga4", "delivered", clock.t - 60, 50)
    restarted.evaluate()
    clock.advance(minutes=6)
    add(store, "ga4", "delivered", clock.t - 60, 50)
    restarted.evaluate()
    assert [a.status for a in rec.sent] == ["firing", "resolved"]


def test_too_little_volume_is_no_verdict(store, tmp_path, clock):
    add(store, "meta", "dead_lettered", clock.t - 60, 5, "meta:190")  # 5 of 5 failed, but min_events = 20
    rec = Recorder()
    evaluator(store, tmp_path, clock, [DeliveryFailureRateRule()], [rec]).evaluate()
    assert rec.sent == []


def test_default_rules_on_an_empty_store_stay_silent(store, tmp_path, clock):
    rec = Recorder()
    ev = evaluator(store, tmp_path, clock, MonitoringConfig().effective_rules(), [rec])
    ev.evaluate()
    assert rec.sent == []


def test_a_failing_notifier_is_retried_without_repeating_the_others(store, tmp_path, clock):
    add(store, "meta", "dead_lettered", clock.t - 60, 30, "meta:190")
    good, flaky = Recorder("good"), Recorder("flaky", fail_times=1)
    ev = evaluator(store, tmp_path, clock, [DeadLetterRule()], [good, flaky])
    ev.evaluate()
    assert (len(good.sent), len(flaky.sent)) == (1, 0)
    clock.advance(minutes=1)
    ev.evaluate()
    assert (len(good.sent), len(flaky.sent)) == (1, 1)


def test_dead_letters_per_destination(store, tmp_path, clock):
    add(store, "ga4", "dead_lettered", clock.t - 60, 3, "http:503", detail="GA4 unavailable (status=503)")
    add(store, "meta", "delivered", clock.t - 60, 10)
    rec = Recorder()
    evaluator(store, tmp_path, clock, [DeadLetterRule()], [rec]).evaluate()
    assert [a.subject for a in rec.sent] == ["ga4"]
    assert rec.sent[0].summary == ("GA4: 3 purchases were dead-lettered in the last 15 minutes — GA4's servers were"
                                   " failing (HTTP 503). Events are being kept and will be replayable once the cause"
                                   " is fixed.")
    assert rec.sent[0].severity == "critical"


def test_traffic_silence(store, tmp_path, clock):
    for h in range(2, 7 * 24):
        add_hits(store, clock.t - h * 3600 + 1800, 5)
    add_hits(store, clock.t - 90 * 60, 1)  # the last hit, 90 minutes ago
    rec = Recorder()
    evaluator(store, tmp_path, clock, [TrafficDropRule(no_hits_minutes=60)], [rec]).evaluate()
    assert len(rec.sent) == 1
    assert rec.sent[0].title == "No hits for 90 minutes"
    assert rec.sent[0].summary.startswith("No hits have arrived for 90 minutes (the last one at ")
    assert "Check that the site's tags still send to the collect URL" in rec.sent[0].summary


def test_traffic_below_last_week(store, tmp_path, clock):
    add_hits(store, clock.t - 7 * 86400 - 1800, 200)  # same hour last week
    add_hits(store, clock.t - 1800, 40)
    add_hits(store, clock.t - 60, 1)
    rec = Recorder()
    evaluator(store, tmp_path, clock, [TrafficDropRule(min_percent_of_last_week=50)], [rec]).evaluate()
    assert rec.sent[0].title == "Traffic is down: 41 hits in the last hour, 20% of last week"
    assert "(same time last week: 200)" in rec.sent[0].summary


class FakeBus:
    def __init__(self, backlog):
        self._backlog = backlog

    def backlog(self):
        return self._backlog


def test_backlog_age(store, tmp_path, clock):
    bus = FakeBus({"deliver": {"messages": 3400, "oldest_age": 22 * 60}, "transform": {"messages": 3, "oldest_age": 2.0}})
    rec = Recorder()
    ev = evaluator(store, tmp_path, clock, [BacklogAgeRule(max_age_minutes=15)], [rec], bus=bus)
    ev.evaluate()
    assert [a.subject for a in rec.sent] == ["deliver"]
    assert rec.sent[0].summary == ("Deliveries are waiting: 3,400 events, the oldest for 22 minutes. They are kept"
                                   " and will be sent as soon as the destination answers.")
    bus._backlog = {}  # drained
    clock.advance(minutes=6)
    ev.evaluate()
    clock.advance(minutes=6)
    ev.evaluate()
    assert [a.status for a in rec.sent] == ["firing", "resolved"]
    assert rec.sent[1].summary.startswith("Deliveries are flowing again: 0 events waiting.")


def test_collect_error_rate_groups_reasons(store, tmp_path, clock):
    add_hits(store, clock.t - 120, 100)
    add(store, "*", "rejected", clock.t - 60, 25, "invalid_json", detail="body is not valid JSON")
    add(store, "*", "rejected", clock.t - 60, 5, "body_too_large", detail="body exceeds 256000 bytes")
    rec = Recorder()
    evaluator(store, tmp_path, clock, [CollectErrorRateRule()], [rec]).evaluate()
    a = rec.sent[0]
    assert a.title == "Collect: 23% of incoming hits were rejected in the last 15 minutes"
    assert ("the body was not valid JSON (invalid_json) × 25; the request was too large (body_too_large) × 5"
            in a.summary)
    assert [(r["code"], r["count"]) for r in a.reasons] == [("invalid_json", 25), ("body_too_large", 5)]


def test_match_keys_drop_against_the_seven_day_baseline(store, tmp_path, clock):
    for d in range(1, 7):
        add(store, "meta", "delivered", clock.t - d * 86400, 40, identifiers=["em", "fbp"])
        add(store, "meta", "delivered", clock.t - d * 86400, 20, identifiers=["fbp"])
    add(store, "meta", "delivered", clock.t - 600, 20, identifiers=["em", "fbp"])
    add(store, "meta", "delivered", clock.t - 600, 80, identifiers=["fbp"])
    rec = Recorder()
    evaluator(store, tmp_path, clock, [MatchKeysRule()], [rec]).evaluate()
    a = rec.sent[0]
    assert a.title == "Meta: fewer events carry email for matching (20%, was 67%)"
    assert a.summary.startswith("Meta: email (em) on 20% of delivered events, down from 67% over the previous 7 days.")
    assert ("browser ID (fbp)", "100% (usually 100%)") not in a.facts  # fbp did not drop


def test_estimated_match_quality_drop_per_event_name(store, tmp_path, clock):
    from tagpipe.monitoring.config import MatchQualityRule

    for d in range(1, 7):  # a week of purchases with email, phone, fbp, fbc, ip_ua: 3+2+0.9+1.2+0.9 = 8.0
        add(store, "meta", "delivered", clock.t - d * 86400, 60, identifiers=["em", "ph", "fbp", "fbc", "ip_ua"])
        add(store, "meta", "delivered", clock.t - d * 86400, 60, event="page_view", identifiers=["fbp", "ip_ua"])
    # the checkout stopped passing email and phone: 3.0 of 10 now; page views unchanged
    add(store, "meta", "delivered", clock.t - 600, 80, identifiers=["fbp", "fbc", "ip_ua"])
    add(store, "meta", "delivered", clock.t - 600, 80, event="page_view", identifiers=["fbp", "ip_ua"])
    add(store, "ga4", "delivered", clock.t - 600, 80, identifiers=["client_id"])  # no score for GA4
    rec = Recorder()
    ev = evaluator(store, tmp_path, clock, [MatchQualityRule()], [rec])
    ev.evaluate()
    [alert] = rec.sent
    assert alert.subject == "meta/purchase"
    assert alert.title == "Meta: estimated match quality of purchase fell to 3.0 (was 8.0)"
    assert "not the vendor's score" in alert.summary and ("Usual", "8.0 / 10") in alert.facts


def test_removed_rule_drops_its_state(store, tmp_path, clock):
    add(store, "meta", "dead_lettered", clock.t - 60, 30, "meta:190")
    rec = Recorder()
    evaluator(store, tmp_path, clock, [DeadLetterRule()], [rec]).evaluate()
    ev = evaluator(store, tmp_path, clock, [CollectErrorRateRule()], [rec])
    ev.evaluate()
    assert ev.active() == [] and len(rec.sent) == 1


# --------------------------------------------------------------------------- config

MONITORING_TOML = """
[monitoring.dashboard]
port = 9191

[monitoring.alerts]
interval_seconds = 30

[monitoring.alerts.email]
host = "smtp.example.com"
from = "tagpipe@shop.example"
to = ["marketing@shop.example"]

[[monitoring.rules]]
type = "delivery_failure_rate"
max_failure_percent = 2

[[monitoring.rules]]
id = "meta_match"
type = "match_keys_drop"
destination = "meta"
keys = ["em", "ph"]
"""


def test_config_from_a_monitoring_file(tmp_path, monkeypatch):
    path = tmp_path / "tagpipe.toml"
    path.write_text(MONITORING_TOML)
    from tagpipe.config import load_config

    cfg = load_monitoring_config(load_config(path))
    assert cfg.dashboard.port == 9191 and cfg.alerts.interval_seconds == 30
    assert cfg.alerts.email.from_ == "tagpipe@shop.example"
    rules = {r.rule_id: r for r in cfg.effective_rules()}
    assert rules["delivery_failure_rate"].max_failure_percent == 2  # overrides the default of the same id
    assert rules["meta_match"].keys == ["em", "ph"] and "match_keys_drop" in rules  # added beside the default
    assert len(rules) == 8  # the 7 defaults and meta_match


@pytest.mark.parametrize("table, key", [
    ({"rules": [{"type": "nope"}]}, "monitoring.rules.0"),
    ({"alerts": {"intervall_seconds": 5}}, "monitoring.alerts.intervall_seconds"),
    ({"alerts": {"email": {"host": "smtp.example.com"}}}, "monitoring.alerts.email"),
])
def test_config_errors_name_the_key(table, key):
    with pytest.raises(ConfigError) as err:
        parse_monitoring(table, "tagpipe.toml")
    assert err.value.key == key, str(err.value)
