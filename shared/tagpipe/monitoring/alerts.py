"""Alert rules, evaluated on a thread of the local stack, with no alert storms.

    rules (config.RULE_TYPES) --evaluate(now)--> findings: (rule, subject) is firing | ok | unknown
    AlertEvaluator: state per (rule, subject), persisted in <storage.dir>/alert_state.json

        absent --firing--> FIRING  (one "firing" message per notifier)
        FIRING --firing--> FIRING  (numbers refreshed for the dashboard; no message)
        FIRING --ok for recovery_minutes--> RESOLVED (one "resolved" message to each notifier told)
        RESOLVED --all told--> absent

`unknown` (too little volume to judge) changes nothing. A notifier that fails is retried on the
next cycle for that alert only. Because the state is on disk, a restart neither re-fires an
alert that is still failing nor forgets to send its recovery.

The clock is injectable (`clock=`), so tests step time instead of sleeping.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tagpipe.models import HIT_LEVEL
from tagpipe.monitoring import language as lang
from tagpipe.monitoring.config import (
    BacklogAgeRule,
    CollectErrorRateRule,
    DeadLetterRule,
    DeliveryFailureRateRule,
    MatchKeysRule,
    MatchQualityRule,
    TrafficDropRule,
)
from tagpipe.monitoring.metrics import DAY, WEEK, Metrics, Reason

log = logging.getLogger("tagpipe.alerts")
STATE_FILE = "alert_state.json"


# --------------------------------------------------------------------------- what is sent


@dataclass
class Alert:
    key: str  # "<rule id>|<subject>"
    rule_id: str
    rule_type: str
    subject: str  # destination id, subscription name or "*"
    status: str  # firing | resolved
    severity: str
    title: str  # one line: header of the Slack message, subject of the email
    summary: str  # the whole story in plain words
    facts: list[tuple[str, str]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)  # {text, code, count, outcome}
    dashboard_url: str = ""
    at: float = 0.0
    since: float = 0.0  # when it started firing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        data = dict(data)
        data["facts"] = [tuple(f) for f in data.get("facts", [])]
        return cls(**data)


@dataclass
class Finding:
    rule_id: str
    subject: str
    status: str  # firing | ok | unknown
    alert: Alert | None = None  # for firing
    ok_text: str = ""  # for ok: how things stand now (the recovery message)

    @property
    def key(self) -> str:
        return f"{self.rule_id}|{self.subject}"


@dataclass
class Context:
    now: float
    metrics: Metrics
    backlog: dict[str, dict[str, float]] | None
    dashboard_url: str
    destination_types: dict[str, str]
    active: dict[str, set[str]]  # rule id -> subjects currently firing (so absence can resolve them)

    def label(self, dest: str) -> str:
        if dest == HIT_LEVEL:
            return "Incoming hits"
        return lang.destination_label(dest, self.destination_types.get(dest))

    def destinations(self, *windows: dict[str, Any]) -> list[str]:
        names = set(self.destination_types)
        for w in windows:
            names |= set(w)
        names.discard(HIT_LEVEL)
        return sorted(names)

    def alert(self, rule: Any, subject: str, title: str, summary: str, facts: list[tuple[str, str]],
              reasons: Iterable[Reason] = ()) -> Alert:
        return Alert(
            key=f"{rule.rule_id}|{subject}", rule_id=rule.rule_id, rule_type=rule.type, subject=subject,
            status="firing", severity=rule.severity, title=title, summary=summary, facts=facts,
            reasons=[{"text": lang.explain_reason(r.reason, r.detail, self.label(r.destination or subject)),
                      "code": r.reason, "count": r.count, "outcome": r.outcome} for r in list(reasons)[:5]],
            dashboard_url=self.dashboard_url, at=self.now,
        )


def _noun(names: dict[str, int]) -> str:
    """'purchases' when every event in question is a purchase, else 'events'."""
    names = {k: v for k, v in names.items() if v}
    return lang.event_plural(next(iter(names))) if len(names) == 1 else "events"


def _why(reasons: list[Reason], name: str) -> str:
    if not reasons:
        return ""
    top = reasons[0]
    text = lang.explain_reason(top.reason, top.detail, name)
    code = "" if top.reason.startswith("http:") else f" ({top.reason})"  # "(HTTP 503)" already says it
    return f" — {text}{code}"


def _volume_fact(n: int, base_total: int, window: float, baseline: float) -> tuple[str, str]:
    usual = base_total / (baseline / window) if baseline > 0 else 0
    text = f"{lang.count(n)} in {lang.window_phrase(window)}"
    if base_total:
        text += f" (usually {lang.count(usual)})"
    return "Volume", text


# --------------------------------------------------------------------------- the rules


def eval_delivery_failure_rate(rule: DeliveryFailureRateRule, ctx: Context) -> list[Finding]:
    window = rule.window_minutes * 60
    since, now = ctx.now - window, ctx.now
    cur = ctx.metrics.dest_stats(since, now)
    base = ctx.metrics.dest_stats(now - WEEK, since)
    subjects = [rule.destination] if rule.destination else ctx.destinations(cur)
    out: list[Finding] = []
    for dest in subjects:
        s, b = cur.get(dest), base.get(dest)
        name = ctx.label(dest)
        if s is None or s.final < rule.min_events:
            out.append(Finding(rule.rule_id, dest, "unknown"))
            continue
        rate = s.failure_rate
        if rate * 100 <= rule.max_failure_percent:
            out.append(Finding(rule.rule_id, dest, "ok", ok_text=(
                f"{name}: deliveries are back to normal — {lang.pct(rate)} failed in {lang.window_phrase(window)}"
                f" ({lang.count(s.final)} events).")))
            continue
        reasons = ctx.metrics.reasons(since, now, dest)
        failed_names = ctx.metrics.event_names(since, now, dest, ("rejected", "dead_lettered"))
        all_names = ctx.metrics.event_names(since, now, dest)
        noun = _noun(all_names)
        was = f" (was {lang.pct(b.failure_rate)})" if b and b.final else ""
        title = f"{name}: {lang.pct(rate)} of {noun} failed in {lang.window_phrase(window)}{was}"
        tail = []
        if s.dead_lettered:
            tail.append("Events are being kept and will be replayable.")
        if s.rejected:
            tail.append(f"Rejected events were refused by {name} one by one: fix the data (see failed events).")
        summary = f"{title}{_why(reasons, name)}. {' '.join(tail)}".strip()
        facts = [("Destination", name), ("Failed", f"{lang.pct(rate)} ({lang.count(s.failed)} of {lang.count(s.final)})"),
                 ("Usual (7 days)", lang.pct(b.failure_rate) if b and b.final else "no data"),
                 _volume_fact(s.final, b.final if b else 0, window, WEEK - window)]
        if noun == "events" and failed_names:
            top, n = failed_names.most_common(1)[0]
            facts.append(("Most affected", f"{lang.event_plural(top)} ({lang.count(n)} failed)"))
        out.append(Finding(rule.rule_id, dest, "firing", ctx.alert(rule, dest, title, summary, facts, reasons)))
    return out


def eval_dead_letters(rule: DeadLetterRule, ctx: Context) -> list[Finding]:
    window = rule.window_minutes * 60
    since, now = ctx.now - window, ctx.now
    reasons = ctx.metrics.reasons(since, now, rule.destination, ("dead_lettered",))
    by_dest: dict[str, list[Reason]] = {}
    for r in reasons:
        by_dest.setdefault(r.destination, []).append(r)
    subjects = {rule.destination} if rule.destination else set(by_dest) | ctx.active.get(rule.rule_id, set())
    out = []
    for dest in sorted(subjects):
        rs = by_dest.get(dest, [])
        n = sum(r.count for r in rs)
        name = ctx.label(dest)
        if n <= rule.max_events:
            out.append(Finding(rule.rule_id, dest, "ok", ok_text=(
                f"{name}: no more dead-lettered events in {lang.window_phrase(window)}.")))
            continue
        if dest == HIT_LEVEL:
            title = f"{lang.count(n)} incoming hits could not be processed in {lang.window_phrase(window)}"
            tail = "They are kept in the dead-letter archive and can be replayed."
        else:
            noun = _noun(ctx.metrics.event_names(since, now, dest, ("dead_lettered",)))
            title = f"{name}: {lang.count(n)} {noun} were dead-lettered in {lang.window_phrase(window)}"
            tail = "Events are being kept and will be replayable once the cause is fixed."
        summary = f"{title}{_why(rs, name)}. {tail}"
        facts = [("Destination", name), ("Dead-lettered", lang.count(n)), ("Window", lang.duration(window))]
        out.append(Finding(rule.rule_id, dest, "firing", ctx.alert(rule, dest, title, summary, facts, rs)))
    return out


def eval_traffic_drop(rule: TrafficDropRule, ctx: Context) -> list[Finding]:
    now, window = ctx.now, rule.window_minutes * 60
    last = ctx.metrics.last_hit_at()
    if last is None or now - last > WEEK:
        return [Finding(rule.rule_id, "*", "unknown")]  # a new or dormant install: nothing to compare
    cur = ctx.metrics.hits(now - window, now)
    base = ctx.metrics.hits(now - WEEK - window, now - WEEK)
    when = time.strftime("%H:%M UTC", time.gmtime(last))
    silence = now - last
    facts = [("Hits", f"{lang.count(cur)} in {lang.window_phrase(window)}"),
             ("Same time last week", lang.count(base)), ("Last hit", f"{lang.duration(silence)} ago ({when})")]
    if rule.no_hits_minutes and silence > rule.no_hits_minutes * 60:
        title = f"No hits for {lang.duration(silence)}"
        summary = (f"No hits have arrived for {lang.duration(silence)} (the last one at {when})."
                   + (f" The same {lang.window_phrase(window)[len('the last '):]} last week had {lang.count(base)}."
                      if base else "")
                   + " Check that the site's tags still send to the collect URL and that collect is up.")
        return [Finding(rule.rule_id, "*", "firing", ctx.alert(rule, "*", title, summary, facts))]
    if rule.min_percent_of_last_week is not None and base >= rule.min_baseline_hits:
        share = cur / base
        if share * 100 < rule.min_percent_of_last_week:
            title = f"Traffic is down: {lang.count(cur)} hits in {lang.window_phrase(window)}, {lang.pct(share)} of last week"
            summary = (f"{title} (same time last week: {lang.count(base)}). Fewer hits means fewer conversions"
                       " reported to the ad platforms: check for a broken tag, a consent banner change or a site outage.")
            return [Finding(rule.rule_id, "*", "firing", ctx.alert(rule, "*", title, summary, facts))]
    elif not rule.no_hits_minutes:
        return [Finding(rule.rule_id, "*", "unknown")]
    return [Finding(rule.rule_id, "*", "ok", ok_text=(
        f"Traffic is back: {lang.count(cur)} hits in {lang.window_phrase(window)}"
        + (f" (same time last week: {lang.count(base)})." if base else "."))
    )]


_QUEUE_WORDS = {
    "deliver": ("Deliveries are waiting", "events", "They are kept and will be sent as soon as the destination answers."),
    "transform": ("Incoming hits are waiting to be processed", "hits", "Is the transform worker running?"),
    "dead-letter-archive": ("Dead letters are waiting to be archived", "messages", "Is the archive worker running?"),
}


def eval_backlog_age(rule: BacklogAgeRule, ctx: Context) -> list[Finding]:
    if ctx.backlog is None:
        return []
    subjects = {rule.subscription} if rule.subscription else set(ctx.backlog) | ctx.active.get(rule.rule_id, set())
    out = []
    for sub in sorted(subjects):
        info = ctx.backlog.get(sub, {"messages": 0, "oldest_age": 0.0})
        age, n = float(info.get("oldest_age") or 0), int(info.get("messages") or 0)
        what, noun, tail = _QUEUE_WORDS.get(sub, (f"Messages are waiting in {sub}", "messages", ""))
        if not n or age <= rule.max_age_minutes * 60:
            out.append(Finding(rule.rule_id, sub, "ok", ok_text=(
                f"{what.split(' are ')[0]} are flowing again: {lang.count(n)} {noun} waiting"
                + (f", the oldest for {lang.duration(age)}." if n else "."))))
            continue
        title = f"{what}: {lang.count(n)} {noun}, the oldest for {lang.duration(age)}"
        summary = f"{title}. {tail}".strip()
        facts = [("Queue", sub), ("Waiting", lang.count(n)), ("Oldest", lang.duration(age)),
                 ("Threshold", lang.duration(rule.max_age_minutes * 60))]
        out.append(Finding(rule.rule_id, sub, "firing", ctx.alert(rule, sub, title, summary, facts)))
    return out


def eval_collect_error_rate(rule: CollectErrorRateRule, ctx: Context) -> list[Finding]:
    window = rule.window_minutes * 60
    since, now = ctx.now - window, ctx.now
    reasons = ctx.metrics.collect_rejections(since, now)
    rejected = sum(r.count for r in reasons)
    total = rejected + ctx.metrics.hits(since, now)
    if total < rule.min_hits:
        return [Finding(rule.rule_id, "*", "unknown")]
    rate = rejected / total
    if rate * 100 <= rule.max_error_percent:
        return [Finding(rule.rule_id, "*", "ok", ok_text=(
            f"Incoming hits are accepted again: {lang.pct(rate)} rejected in {lang.window_phrase(window)}."))]
    base_rej = sum(r.count for r in ctx.metrics.collect_rejections(now - WEEK, since))
    base_total = base_rej + ctx.metrics.hits(now - WEEK, since)
    was = f" (was {lang.pct(base_rej / base_total)})" if base_total else ""
    title = f"Collect: {lang.pct(rate)} of incoming hits were rejected in {lang.window_phrase(window)}{was}"
    grouped = "; ".join(f"{lang.explain_reason(r.reason, r.detail)} ({r.reason}) × {lang.count(r.count)}"
                        for r in reasons[:3])
    summary = (f"{title} — {grouped}. Rejected hits are not delivered anywhere: check the tag or the sender"
               " (the failed events show the request).")
    facts = [("Rejected", f"{lang.pct(rate)} ({lang.count(rejected)} of {lang.count(total)})"),
             ("Usual (7 days)", lang.pct(base_rej / base_total) if base_total else "no data"),
             _volume_fact(total, base_total, window, WEEK - window)]
    return [Finding(rule.rule_id, "*", "firing", ctx.alert(rule, "*", title, summary, facts, reasons))]


def eval_match_keys_drop(rule: MatchKeysRule, ctx: Context) -> list[Finding]:
    window = rule.window_minutes * 60
    since, now = ctx.now - window, ctx.now
    cur = ctx.metrics.identifier_shares(since, now)
    base = ctx.metrics.identifier_shares(since - rule.baseline_days * DAY, since)
    subjects = [rule.destination] if rule.destination else ctx.destinations(cur, base)
    out = []
    for dest in subjects:
        (n, keys), (bn, bkeys) = cur.get(dest, (0, {})), base.get(dest, (0, {}))
        name = ctx.label(dest)
        if n < rule.min_events or bn < rule.min_events:
            out.append(Finding(rule.rule_id, dest, "unknown"))
            continue
        dropped = []
        for key in rule.keys:
            was, now_share = bkeys.get(key, 0) / bn, keys.get(key, 0) / n
            if was * 100 >= rule.min_baseline_percent and now_share < was * (1 - rule.max_drop_percent / 100):
                dropped.append((key, now_share, was))
        if not dropped:
            out.append(Finding(rule.rule_id, dest, "ok", ok_text=(
                f"{name}: match keys are back to their usual share ("
                + ", ".join(f"{lang.identifier_name(k)} {lang.pct(keys.get(k, 0) / n)}" for k in rule.keys
                            if bkeys.get(k)) + ").")))
            continue
        key, now_share, was = dropped[0]
        days = lang.duration(rule.baseline_days * DAY)
        title = f"{name}: fewer events carry {lang.identifier_name(key)} for matching ({lang.pct(now_share)}, was {lang.pct(was)})"
        parts = "; ".join(f"{_key_name(k)} on {lang.pct(s)} of delivered events, down from {lang.pct(w)}"
                          for k, s, w in dropped)
        summary = (f"{name}: {parts} over the previous {days}. Fewer match keys mean fewer matched conversions and"
                   " weaker ad optimisation: check that the site still passes customer data and the cookies.")
        facts = [("Destination", name), ("Delivered", f"{lang.count(n)} in {lang.window_phrase(window)}")]
        facts += [(f"{lang.identifier_name(k)}", f"{lang.pct(s)} (usually {lang.pct(w)})") for k, s, w in dropped[:6]]
        out.append(Finding(rule.rule_id, dest, "firing", ctx.alert(rule, dest, title, summary, facts)))
    return out


def eval_match_quality_drop(rule: MatchQualityRule, ctx: Context) -> list[Finding]:
    window = rule.window_minutes * 60
    since, now = ctx.now - window, ctx.now
    cur = ctx.metrics.match_quality(since, now, ctx.destination_types)
    base = ctx.metrics.match_quality(since - rule.baseline_days * DAY, since, ctx.destination_types)
    out = []
    for dest, name in sorted(set(cur) | set(base)):
        if rule.destination and dest != rule.destination:
            continue
        subject = f"{dest}/{name}"
        (n, score), (bn, was) = cur.get((dest, name), (0, 0.0)), base.get((dest, name), (0, 0.0))
        label = ctx.label(dest)
        if n < rule.min_events or bn < rule.min_events:
            out.append(Finding(rule.rule_id, subject, "unknown"))
        elif was - score > rule.max_drop_points:
            days = lang.duration(rule.baseline_days * DAY)
            title = f"{label}: estimated match quality of {name} fell to {score:.1f} (was {was:.1f})"
            summary = (f"{label}: {name} events carry fewer match keys than over the previous {days}, so the "
                       f"estimated match quality fell from {was:.1f} to {score:.1f} of 10 (tagpipe's estimate from "
                       "the keys sent, not the vendor's score). Check that the site still passes customer data, "
                       "click ids and cookies.")
            facts = [("Destination", label), ("Event", name), ("Estimated now", f"{score:.1f} / 10"),
                     ("Usual", f"{was:.1f} / 10"), ("Delivered", f"{lang.count(n)} in {lang.window_phrase(window)}")]
            out.append(Finding(rule.rule_id, subject, "firing", ctx.alert(rule, subject, title, summary, facts)))
        else:
            out.append(Finding(rule.rule_id, subject, "ok",
                               ok_text=f"{label}: estimated match quality of {name} is back to {score:.1f}."))
    return out


def _key_name(key: str) -> str:
    """'email (em)'; 'click ID (fbc)' already names its key."""
    name = lang.identifier_name(key)
    return name if f"({key})" in name or name == key else f"{name} ({key})"


EVALUATORS: dict[str, Callable[[Any, Context], list[Finding]]] = {
    "delivery_failure_rate": eval_delivery_failure_rate,
    "dead_letters": eval_dead_letters,
    "traffic_drop": eval_traffic_drop,
    "backlog_age": eval_backlog_age,
    "collect_error_rate": eval_collect_error_rate,
    "match_keys_drop": eval_match_keys_drop,
    "match_quality_drop": eval_match_quality_drop,
}


# --------------------------------------------------------------------------- the evaluator


class AlertState:
    """The on-disk state: one entry per (rule, subject) that is firing or has a recovery to send."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            doc = json.loads(path.read_text())
            self.entries = dict(doc.get("alerts", {}))
        except FileNotFoundError:
            pass
        except (ValueError, OSError) as exc:
            log.error("alert state %s unreadable (%s): starting empty", path, exc)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".alert_state.")
        with os.fdopen(fd, "w") as f:
            json.dump({"version": 1, "alerts": self.entries}, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


def read_alert_state(directory: str | Path) -> list[dict[str, Any]]:
    """The alerts firing now, for the dashboard (another process may own the evaluator)."""
    state = AlertState(Path(directory) / STATE_FILE)
    return [e["alert"] for e in state.entries.values() if e.get("status") == "firing"]


class AlertEvaluator:
    def __init__(self, store: Any, rules: Sequence[Any], notifiers: Sequence[Any], state_dir: str | Path, *,
                 bus: Any = None, clock: Callable[[], float] = time.time, dashboard_url: str = "",
                 destination_types: dict[str, str] | None = None, recovery_minutes: float = 5.0,
                 interval_seconds: float = 60.0) -> None:
        self.store, self.rules, self.notifiers, self.bus = store, list(rules), list(notifiers), bus
        self.clock = clock
        self.dashboard_url = dashboard_url
        self.destination_types = dict(destination_types or {})
        self.recovery = recovery_minutes * 60
        self.interval = interval_seconds
        self.state = AlertState(Path(state_dir) / STATE_FILE)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- one cycle
    def evaluate(self) -> list[Alert]:
        """Run every rule once, update the state, send what is due. Returns the messages sent."""
        with self._lock:
            now = self.clock()
            findings = self._findings(now)
            self._transition(findings, now)
            sent = self._send_due()
            self.state.save()
            return sent

    def _findings(self, now: float) -> list[Finding]:
        backlog = None
        if self.bus is not None and hasattr(self.bus, "backlog"):
            try:
                backlog = self.bus.backlog()
            except Exception as exc:  # the queue being down is for the backlog rule to show, not to crash
                log.error("backlog unavailable: %s", exc)
        active: dict[str, set[str]] = {}
        for e in self.state.entries.values():
            if e["status"] == "firing":
                active.setdefault(e["alert"]["rule_id"], set()).add(e["alert"]["subject"])
        ctx = Context(now, Metrics(self.store, now), backlog, self.dashboard_url, self.destination_types, active)
        findings: list[Finding] = []
        for rule in self.rules:
            try:
                findings += EVALUATORS[rule.type](rule, ctx)
            except Exception:
                log.exception("alert rule %s failed to evaluate; its alerts stay as they are", rule.rule_id)
        return findings

    def _transition(self, findings: list[Finding], now: float) -> None:
        entries = self.state.entries
        for f in findings:
            e = entries.get(f.key)
            if f.status == "firing":
                alert = f.alert
                if e is None:
                    alert.since = now
                    entries[f.key] = {"status": "firing", "alert": alert.to_dict(), "title": alert.title, "notified": [],
                                      "ok_since": None, "resolution": None, "resolved_to": []}
                    log.warning("alert firing: %s", alert.title, extra={"alert": f.key})
                else:
                    alert.since = e["alert"].get("since", now)
                    e.update(status="firing", alert=alert.to_dict(), ok_since=None, resolution=None, resolved_to=[])
            elif f.status == "ok" and e is not None and e["status"] == "firing":
                e["ok_since"] = e["ok_since"] or now
                if now - e["ok_since"] >= self.recovery:
                    fired = Alert.from_dict(e["alert"])
                    fired.title = e.get("title") or fired.title  # what the recipients were told
                    lasted = lang.duration(now - fired.since)
                    resolution = Alert(
                        key=fired.key, rule_id=fired.rule_id, rule_type=fired.rule_type, subject=fired.subject,
                        status="resolved", severity=fired.severity, title=f"Resolved: {fired.title}",
                        summary=f"{f.ok_text} It had been alerting for {lasted}.",
                        facts=[("Was", fired.title), ("Alerting for", lasted)],
                        dashboard_url=fired.dashboard_url, at=now, since=fired.since,
                    )
                    e.update(status="resolved", resolution=resolution.to_dict(), resolved_to=[])
                    log.warning("alert resolved: %s", fired.title, extra={"alert": f.key})
        known = {r.rule_id for r in self.rules}
        for key in [k for k, e in entries.items() if e["alert"]["rule_id"] not in known]:
            log.info("dropping alert state of removed rule: %s", key)
            del entries[key]

    def _send_due(self) -> list[Alert]:
        sent: list[Alert] = []
        for key, e in list(self.state.entries.items()):
            if e["status"] == "firing":
                alert, done, targets = Alert.from_dict(e["alert"]), e["notified"], self.notifiers
            else:
                alert, done = Alert.from_dict(e["resolution"]), e["resolved_to"]
                targets = [n for n in self.notifiers if n.name in e["notified"]]
            delivered = False
            for notifier in targets:
                if notifier.name in done:
                    continue
                try:
                    notifier.send(alert)
                except Exception as exc:
                    log.error("alert %s: %s notifier failed (%s); retrying next cycle", key, notifier.name, exc)
                    continue
                done.append(notifier.name)
                delivered = True
            if delivered:
                sent.append(alert)
            if e["status"] == "resolved" and all(n.name in done for n in targets):
                del self.state.entries[key]
        return sent

    # -- views
    def active(self) -> list[Alert]:
        with self._lock:
            return [Alert.from_dict(e["alert"]) for e in self.state.entries.values() if e["status"] == "firing"]

    # -- thread
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.evaluate()
            except Exception:
                log.exception("alert evaluation failed")
            stop.wait(self.interval)

    def start(self) -> AlertEvaluator:
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name="alerts", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
