"""The dashboard and the debug view: a small Starlette app over the local store.

    create_dashboard_app(runtime)   the ASGI app (the local stack serves it on 127.0.0.1:8081)
    GET /                           the page: one self-contained HTML file + JS, charts drawn as SVG
    GET /api/summary?window=3600    traffic, outcomes per destination, reasons, match quality, backlog
    GET /api/alerts                 alerts firing now (the evaluator's state)
    GET /api/debug/tokens           recent debug tokens
    GET /api/debug/{token}          every traced hit of a token, stage by stage
    GET /api/lookup?q=<id>          any hit by hit id, event_id, transaction / order id or client id
    POST /api/test-send/{dest}      one sample event in the vendor's test mode (tagpipe.ops.test_send)
    GET /healthz

Nothing served here carries PII: every document passes through tagpipe.monitoring.redact.
With $TAGPIPE_DASHBOARD_TOKEN set, every route but /healthz needs it (Authorization: Bearer, or
open /?token=... once: it is kept in an HttpOnly cookie).
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tagpipe.models import HIT_LEVEL, Event
from tagpipe.monitoring import language as lang
from tagpipe.monitoring.alerts import read_alert_state
from tagpipe.monitoring.config import MonitoringConfig, load_monitoring_config
from tagpipe.monitoring.metrics import KINDS, WEEK, DestStats, Metrics
from tagpipe.monitoring.redact import for_display, only_events, raw_hit_for_display, scrub_string
from tagpipe.privacy import mask_secret_params
from tagpipe.settings import secret

log = logging.getLogger("tagpipe.dashboard")
STATIC = Path(__file__).parent / "static"
COOKIE = "tagpipe_dashboard"
BASELINE_TTL = 300.0  # seconds a window's 7-day baseline is reused
WINDOWS = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}
MATCH_KEYS = ("em", "ph", "fn", "ln", "external_id", "fbp", "fbc", "ip_ua", "client_id", "gclid", "ttclid", "ttp")


def bucket_for(window: float) -> float:
    for limit, bucket in ((3600, 60), (6 * 3600, 300), (86400, 900)):
        if window <= limit:
            return bucket
    return 3600


class DashboardData:
    """The documents behind the page, computed from the store (and the bus's backlog)."""

    def __init__(self, store: Any, bus: Any = None, *, destination_types: dict[str, str] | None = None,
                 state_dir: str | Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store, self.bus, self.clock = store, bus, clock
        self.destination_types = destination_types or {}
        self.state_dir = state_dir
        self._baselines: dict[float, tuple] = {}

    def label(self, dest: str) -> str:
        return lang.destination_label(dest, self.destination_types.get(dest))

    def metered(self, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        """fn's document and, over a store that bills its scans (BigQuery: storage/bigquery_dashboard.py),
        what the document's queries scanned, as `scanned`."""
        meter = getattr(self.store, "meter", None)
        if meter is None:
            return fn(*args)
        with meter() as scan:
            doc = fn(*args)
        return {**doc, "scanned": scan.as_dict()}

    # -- /api/summary
    def summary(self, window: float = 3600) -> dict[str, Any]:
        now = self.clock()
        bucket = bucket_for(window)
        n = max(1, math.ceil(window / bucket))
        until = (math.floor(now / bucket) + 1) * bucket
        since = until - n * bucket
        m = Metrics(self.store, now)
        stats = m.dest_stats(since, until)
        base_stats, base_hits, base_ids, base_emq = self._baseline(m, window, since)
        emq = m.match_quality(since, until, self.destination_types)
        per_minute = 60.0 / bucket

        series: dict[str, list[float]] = {k: [0] * n for k in ("hits", "events", *KINDS)}
        for b, count in self.store.hit_series(since, until, bucket):
            if 0 <= b < n:
                series["hits"][b] += count
        for b, count in self.store.event_series(since, until, bucket):
            if 0 <= b < n:
                series["events"][b] += count
        for b, kind, count in self.store.outcome_series(since, until, bucket):
            if 0 <= b < n and kind in series:
                series[kind][b] += count

        rejections = m.collect_rejections(since, until)
        hits = sum(series["hits"])
        ids = m.identifier_shares(since, until)
        destinations = []
        for dest in sorted(set(stats) | set(self.destination_types) | set(ids)):
            s = stats.get(dest)
            if s is None:
                s = DestStats()
            b = base_stats.get(dest)
            total, keys = ids.get(dest, (0, {}))
            btotal, bkeys = base_ids.get(dest, (0, {}))
            quality = []
            for key in sorted(set(keys) | set(bkeys), key=lambda k: (MATCH_KEYS.index(k) if k in MATCH_KEYS else 99, k)):
                quality.append({"key": key, "label": lang.identifier_name(key),
                                "share": round(keys.get(key, 0) / total, 4) if total else None,
                                "baseline": round(bkeys.get(key, 0) / btotal, 4) if btotal else None})
            estimate = [{"event_name": name, "events": n, "score": score,
                         "baseline": base_emq[(d, name)][1] if (d, name) in base_emq else None}
                        for (d, name), (n, score) in sorted(emq.items()) if d == dest]
            destinations.append({
                "id": dest, "label": self.label(dest), "type": self.destination_types.get(dest, ""),
                **s.as_dict(),
                "baseline_failure_rate": round(b.failure_rate, 4) if b and b.final else None,
                "match_quality": quality,
                "match_quality_estimate": estimate,  # tagpipe's 0-10 estimate (monitoring/match_quality.py)
            })

        reasons = [{"destination": r.destination, "label": self.label(r.destination), "outcome": r.outcome,
                    "reason": r.reason, "count": r.count,
                    "text": lang.explain_reason(r.reason, r.detail, self.label(r.destination))}
                   for r in m.reasons(since, until) if r.destination != HIT_LEVEL]
        filtered = [{"destination": r.destination, "label": self.label(r.destination), "reason": r.reason,
                     "count": r.count, "text": lang.explain_reason(r.reason, r.detail, self.label(r.destination))}
                    for r in m.reasons(since, until, None, ("filtered",)) if r.destination != HIT_LEVEL]
        totals = {k: sum(getattr(s, k) for s in stats.values()) for k in KINDS}
        final = totals["delivered"] + totals["rejected"] + totals["dead_lettered"]
        base_final = sum(s.final for s in base_stats.values())
        base_failed = sum(s.failed for s in base_stats.values())
        collect_rejected = sum(r.count for r in rejections)
        return {
            "generated_at": now,
            "window": {"seconds": window, "since": since, "until": until, "bucket": bucket, "label": lang.window_phrase(window)},
            "totals": {
                **totals, "hits": hits, "events": sum(series["events"]), "failed": totals["rejected"] + totals["dead_lettered"],
                "failure_rate": round((final - totals["delivered"]) / final, 4) if final else 0.0,
                "duplicate": sum(s.filtered_by.get("duplicate", 0) for s in stats.values()),
                "consent": sum(s.filtered_by.get("consent", 0) for s in stats.values()),
                "collect_rejected": collect_rejected,
                "collect_error_rate": round(collect_rejected / (collect_rejected + hits), 4) if collect_rejected + hits else 0.0,
            },
            "baseline": {
                "hits_usual": round(base_hits * (n * bucket) / WEEK, 1),  # per window of this length
                "failure_rate": round(base_failed / base_final, 4) if base_final else None,
                "days": 7,
            },
            "series": {"t": [since + i * bucket for i in range(n)], "per_minute": per_minute,
                       "partial_last": until > now, **series},
            "destinations": destinations,
            "reasons": reasons,
            "filtered": filtered,
            "collect_rejections": [{"reason": r.reason, "count": r.count, "text": lang.explain_reason(r.reason, r.detail)}
                                   for r in rejections],
            "backlog": self.backlog(),
            "alerts": self.alerts(),
        }

    def _baseline(self, m: Metrics, window: float, since: float) -> tuple:
        """The 7 days before the window: the heaviest reads, so kept for up to 5 minutes per window."""
        key = int(since // BASELINE_TTL)
        cached = self._baselines.get(window)
        if cached is None or cached[0] != key:
            cached = (key, (m.dest_stats(since - WEEK, since), m.hits(since - WEEK, since),
                            m.identifier_shares(since - WEEK, since),
                            m.match_quality(since - WEEK, since, self.destination_types)))
            self._baselines[window] = cached
        return cached[1]

    def backlog(self) -> list[dict[str, Any]]:
        if self.bus is None or not hasattr(self.bus, "backlog"):
            return []
        try:
            data = self.bus.backlog()
        except Exception as exc:
            log.error("backlog unavailable: %s", exc)
            return []
        subs = list(getattr(self.bus, "topology", {}) or data)
        return [{"subscription": s, "messages": int(data.get(s, {}).get("messages", 0)),
                 "oldest_age": round(float(data.get(s, {}).get("oldest_age", 0.0)), 1)} for s in subs]

    def alerts(self) -> list[dict[str, Any]]:
        if self.state_dir is None:
            return []
        return [{"title": a["title"], "summary": a["summary"], "severity": a["severity"], "since": a["since"],
                 "rule_id": a["rule_id"], "subject": a["subject"]} for a in read_alert_state(self.state_dir)]

    # -- /api/debug
    def debug_tokens(self, limit: int = 50) -> list[dict[str, Any]]:
        return [{"token": t, "hits": n, "first_at": first, "last_at": last}
                for t, n, first, last in self.store.debug_tokens(limit)]

    def debug_detail(self, token: str) -> dict[str, Any]:
        return {"token": token, "hits": self.hits_view(self.store.debug_trace(token))}

    def lookup(self, key: str) -> dict[str, Any]:
        """Any hit, traced or not, by hit id, event_id, transaction / order id or client id: its stages and,
        per event and destination, what was sent and how it ended (request bodies only for traced hits)."""
        key = key.strip()[:200]
        hit_ids = self.store.find_hits(key) if key else []
        return {"query": key, "hits": self.hits_view(self.store.hit_records(hit_ids))}

    def hits_view(self, data: dict[str, list[tuple]]) -> list[dict[str, Any]]:
        hits: dict[str, dict[str, Any]] = {}
        for (hit_id,) in data["hit_ids"]:
            hits[hit_id] = {"hit_id": hit_id, "received_at": None, "raw": None, "events": [], "deliveries": [],
                            "traced": False, "failures": []}
        for hit_id, received_at, doc in data["raw_hits"]:
            hits[hit_id]["received_at"] = received_at
            hits[hit_id]["raw"] = raw_hit_for_display(json.loads(doc))
        events: dict[str, dict[str, Any]] = {}
        for hit_id, event_uid, doc in data["events"]:
            ev = Event.model_validate_json(doc).model_dump(mode="json")  # every field, None ones too
            events[event_uid] = {"event_uid": event_uid, "name": ev.get("name"), "event_id": ev.get("event_id"),
                                 "event": for_display(ev), "destinations": {}}
            hits[hit_id]["events"].append(events[event_uid])
        event_ids: dict[str, set[str]] = {}
        for ev in events.values():
            event_ids.setdefault(ev["event_uid"].split(":")[0], set()).add(str(ev["event_id"]))

        def dest_entry(event_uid: str, dest: str) -> dict[str, Any] | None:
            # a tag's task and outcome carry "<event_uid>#<tag>" (tagpipe.tagging.tag_event_uid): one row
            # per (destination, tag) under its event, not an unlabelled hit-level line
            base, _, tag = event_uid.partition("#")
            ev = events.get(base)
            if ev is None:
                return None
            label = self.label(dest) + (f" · tag {tag}" if tag else "")
            return ev["destinations"].setdefault(f"{dest}#{tag}" if tag else dest, {
                "destination": dest, "tag": tag or None, "label": label, "task": None, "outcome": None})

        attempts: dict[tuple[str, str], int] = {}
        for hit_id, stage, at, doc in data["traces"]:
            hits[hit_id]["traced"] = True
            trace = json.loads(doc)
            if stage == "transform":
                for task in trace.get("tasks", []):
                    entry = dest_entry(task.get("event_uid", ""), task.get("destination", ""))
                    if entry is not None:
                        entry["task"] = {"event_name": task.get("event_name"), "identifiers": task.get("identifiers", []),
                                         "payload": for_display(task.get("payload", {}))}
            elif stage == "deliver":
                dest = trace.get("destination", "")
                request = trace.get("request") or {}
                response = trace.get("response") or {}
                attempts[(hit_id, dest)] = attempt = attempts.get((hit_id, dest), 0) + 1
                hits[hit_id]["deliveries"].append({
                    "destination": dest, "label": self.label(dest), "at": at, "attempt": attempt,
                    "verdict": trace.get("verdict"), "reason": trace.get("reason"),
                    "request": {"method": request.get("method"), "url": mask_secret_params(str(request.get("url", ""))),
                                "body": only_events(for_display(request.get("body")), event_ids.get(hit_id, set()))},
                    "response": {"status": response.get("status"), "elapsed_ms": response.get("elapsed_ms"),
                                 "body": scrub_string(str(response.get("body", "")))[:2000]},
                })
        for hit_id, event_uid, dest, outcome, reason, detail, _name, identifiers, at in data["outcomes"]:
            record = {"outcome": outcome, "reason": reason, "detail": scrub_string(detail or ""), "at": at,
                      "identifiers": [i for i in (identifiers or "").split(",") if i],
                      "text": lang.explain_reason(reason, detail, self.label(dest)) if outcome != "delivered" else "delivered"}
            entry = dest_entry(event_uid, dest) if dest != HIT_LEVEL else None
            if entry is not None:
                entry["outcome"] = record
            elif hit_id in hits:
                label = "the whole hit" if dest == HIT_LEVEL else self.label(dest)
                hits[hit_id].setdefault("hit_outcomes", []).append({"destination": dest, "label": label, **record})
        for hit_id, stage, dest, code, message, at in data.get("failed", []):
            hits[hit_id]["failures"].append({"stage": stage, "destination": dest, "reason": code, "at": at,
                                             "text": lang.explain_reason(code, message, self.label(dest or "")),
                                             "detail": scrub_string(message or "")[:300]})
        for hit in hits.values():
            for ev in hit["events"]:
                ev["destinations"] = sorted(ev["destinations"].values(), key=lambda d: (d["destination"], d["tag"] or ""))
        return sorted(hits.values(), key=lambda h: -(h["received_at"] or 0))

# --------------------------------------------------------------------------- the app


def _authorized(request: Request, token: str | None) -> bool:
    if not token:
        return True
    header = request.headers.get("authorization", "")
    offered = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE, "")
    return bool(offered) and hmac.compare_digest(offered.encode(), token.encode())


LOGIN_PAGE = """<!doctype html><meta charset=utf-8><title>tagpipe · sign in</title>
<style>body{font:15px system-ui,sans-serif;background:#f4f6fa;display:grid;place-items:center;height:100vh;margin:0}
form{background:#fff;padding:28px 32px;border-radius:12px;box-shadow:0 2px 12px #0001}input{font:inherit;padding:8px;width:260px}
button{font:inherit;padding:8px 14px;margin-left:6px;background:#3056d3;color:#fff;border:0;border-radius:6px}</style>
<form method=get action="/"><h2 style="margin-top:0">tagpipe dashboard</h2><p>This dashboard needs its access token
(<code>TAGPIPE_DASHBOARD_TOKEN</code>).</p><input name=token type=password autofocus placeholder="token"><button>Open</button></form>"""


def create_dashboard_app(runtime: Any = None, *, store: Any = None, bus: Any = None,
                         monitoring: MonitoringConfig | None = None, destination_types: dict[str, str] | None = None,
                         state_dir: str | Path | None = None, token: str | None = None,
                         clock: Callable[[], float] = time.time, test_sender: Callable[..., dict] | None = None,
                         ) -> Starlette:
    """The dashboard for a Runtime (or for an explicit store/bus, as tests do). Test sends need the
    Runtime (its destinations and secrets) and `test_sender` (tagpipe.ops.test_send.send_test_event: the
    operator layer hands it in; a ValueError it raises is answered as a 400 with its words)."""
    if runtime is not None:
        store = store or runtime.store
        bus = bus if bus is not None else runtime.bus
        monitoring = monitoring or load_monitoring_config(runtime.config)
        state_dir = state_dir or runtime.config.storage.dir
        if destination_types is None:
            try:
                destination_types = {e.id: e.type for e in runtime.entries.values()}
            except Exception:  # config errors surface at start-up, not here
                destination_types = {}
    monitoring = monitoring or MonitoringConfig()
    if token is None:
        token = secret(monitoring.dashboard.token_env) or None
    if not hasattr(store, "outcome_breakdown"):
        raise TypeError(f"the dashboard reads a SqliteStore; got {type(store).__name__}")
    data = DashboardData(store, bus, destination_types=destination_types, state_dir=state_dir, clock=clock)
    page = (STATIC / "dashboard.html").read_text()
    script = (STATIC / "dashboard.js").read_text()
    security = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY",
                "cache-control": "no-store",
                "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
                                           " frame-ancestors 'none'"}

    def guard(fn):
        async def endpoint(request: Request) -> Response:
            if not monitoring.dashboard.answers_to(request.headers.get("host")):  # DNS rebinding
                return JSONResponse({"ok": False, "error": "misdirected_request", "reason": "this dashboard answers "
                                     "to 127.0.0.1 / localhost and monitoring.dashboard.allowed_hosts only"}, 421)
            offered = request.query_params.get("token")
            if token and offered is not None:
                if not hmac.compare_digest(offered.encode(), token.encode()):
                    return HTMLResponse(LOGIN_PAGE, status_code=401, headers=security)
                target = request.url.path
                resp = RedirectResponse(target, status_code=303)
                resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
                return resp
            if not _authorized(request, token):
                if request.url.path.startswith("/api/"):
                    return JSONResponse({"ok": False, "error": "unauthorized",
                                         "reason": "send Authorization: Bearer <TAGPIPE_DASHBOARD_TOKEN>"}, 401)
                return HTMLResponse(LOGIN_PAGE, status_code=401, headers=security)
            resp = await fn(request)
            resp.headers.update(security)
            return resp

        return endpoint

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    async def js(request: Request) -> Response:
        return Response(script, media_type="text/javascript")

    async def destinations(request: Request) -> Response:
        return JSONResponse({"destinations": [{"id": d, "type": t, "label": data.label(d)}
                                              for d, t in sorted((destination_types or {}).items())],
                             "test_send": runtime is not None and test_sender is not None})

    async def summary(request: Request) -> Response:
        raw = request.query_params.get("window", "3600")
        window = WINDOWS.get(raw) or (float(raw) if raw.replace(".", "", 1).isdigit() else 3600.0)
        window = min(max(window, 300.0), 30 * 86400.0)
        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(data.metered, data.summary, window))

    async def alerts(request: Request) -> Response:
        return JSONResponse({"alerts": data.alerts()})

    async def tokens(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(data.metered, lambda: {"tokens": data.debug_tokens()}))

    async def detail(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(data.metered, data.debug_detail, request.path_params["token"]))

    async def lookup(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(data.metered, data.lookup, request.query_params.get("q", "")))

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def test_send_endpoint(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        # a cross-site form cannot set this header, so another page cannot make the dashboard send
        if request.headers.get("x-tagpipe-action") != "test-send":
            return JSONResponse({"ok": False, "error": "missing_header", "reason": "send x-tagpipe-action: test-send"}, 400)
        if runtime is None or test_sender is None:
            return JSONResponse({"ok": False, "error": "no_config", "reason": "this dashboard has no destinations"}, 404)
        try:
            body = await request.json()
        except ValueError:
            body = {}
        code = body.get("test_event_code") if isinstance(body, dict) else None
        live = isinstance(body, dict) and body.get("live") is True
        try:
            report = await run_in_threadpool(test_sender, runtime, request.path_params["destination"],
                                             test_event_code=str(code) if code else None, live=live)  # fmt: skip
        except ValueError as exc:
            return JSONResponse({"ok": False, "error": "test_send_refused", "reason": str(exc),
                                 "needs_live": getattr(exc, "needs_live", False)}, 400)  # fmt: skip
        return JSONResponse(report)

    app = Starlette(routes=[
        Route("/", guard(index)),
        Route("/dashboard.js", guard(js)),
        Route("/api/summary", guard(summary)),
        Route("/api/alerts", guard(alerts)),
        Route("/api/destinations", guard(destinations)),
        Route("/api/debug/tokens", guard(tokens)),
        Route("/api/lookup", guard(lookup)),
        Route("/api/test-send/{destination}", guard(test_send_endpoint), methods=["POST"]),
        Route("/api/debug/{token:path}", guard(detail)),
        Route("/healthz", health),
    ])
    app.state.data = data
    app.state.destination_types = destination_types or {}
    return app


# --------------------------------------------------------------------------- serving it locally


def _loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


class DashboardServer:
    """uvicorn on a thread, on a socket bound before start so a busy port is a log line, not a crash."""

    def __init__(self, app: Any, host: str, port: int, token_set: bool) -> None:
        self.app, self.host, self.port, self.token_set = app, host, port, token_set
        self.server = None
        self.thread: threading.Thread | None = None

    def start(self) -> bool:
        import uvicorn

        if not _loopback(self.host) and not self.token_set:
            log.error("dashboard not started: it would listen on %s without a token; set TAGPIPE_DASHBOARD_TOKEN"
                      " or keep [monitoring.dashboard] host = 127.0.0.1", self.host)
            return False
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            log.error("dashboard not started: cannot listen on %s:%d (%s); set TAGPIPE_DASHBOARD_PORT",
                      self.host, self.port, exc)
            return False
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name="dashboard", daemon=True)
        self.thread.start()
        log.info("tagpipe dashboard on http://%s:%d", self.host, self.port)
        return True

    def close(self, timeout: float = 5.0) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
