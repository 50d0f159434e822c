"""Monitoring as the local stack runs it: the alert evaluator thread and the dashboard server.

    monitoring = Monitoring(runtime)   # reads [monitoring]; a bad table stops start-up with the key
    monitoring.start()                 # dashboard on 127.0.0.1:8081, rules every interval_seconds
    monitoring.close()

Neither part can take the pipeline down: a busy port or a failing rule is a log line.
"""

from __future__ import annotations

import logging
from typing import Any

from tagpipe.monitoring.config import dashboard_port, load_monitoring_config
from tagpipe.settings import secret

log = logging.getLogger("tagpipe.monitoring")


class Monitoring:
    def __init__(self, runtime: Any, test_sender: Any = None) -> None:
        self.runtime = runtime
        self.test_sender = test_sender  # the operator layer's test send (tagpipe.ops.test_send), for the dashboard
        self.cfg = load_monitoring_config(runtime.config)
        self.server = None
        self.evaluator = None
        self.dashboard_url = self.cfg.dashboard.url

    def _destination_types(self) -> dict[str, str]:
        try:
            return {e.id: e.type for e in self.runtime.entries.values()}
        except Exception:
            return {}

    def start(self) -> Monitoring:
        from tagpipe.monitoring.alerts import AlertEvaluator
        from tagpipe.monitoring.dashboard import DashboardServer, create_dashboard_app
        from tagpipe.monitoring.notifiers import build_notifiers

        cfg, rt = self.cfg, self.runtime
        readable = hasattr(rt.store, "outcome_breakdown")  # the SQLite store; on GCP, Cloud Monitoring does this
        if cfg.dashboard.enabled and readable:
            try:
                app = create_dashboard_app(rt, monitoring=cfg, test_sender=self.test_sender)
                token_set = bool(secret(cfg.dashboard.token_env))
                server = DashboardServer(app, cfg.dashboard.host, dashboard_port(cfg), token_set)
                if server.start():
                    self.server = server
                    if not cfg.dashboard.public_url:
                        self.dashboard_url = f"http://{cfg.dashboard.host}:{server.port}"
            except Exception:
                log.exception("dashboard failed to start; the pipeline runs on without it")
        if cfg.alerts.enabled and readable:
            try:
                self.evaluator = AlertEvaluator(
                    rt.store, cfg.effective_rules(), build_notifiers(cfg), rt.config.storage.dir, bus=rt.bus,
                    dashboard_url=self.dashboard_url, destination_types=self._destination_types(),
                    recovery_minutes=cfg.alerts.recovery_minutes, interval_seconds=cfg.alerts.interval_seconds,
                ).start()
                log.info("alert rules: %s; notifiers: %s", ", ".join(r.rule_id for r in self.evaluator.rules),
                         ", ".join(n.name for n in self.evaluator.notifiers))
            except Exception:
                log.exception("alert evaluator failed to start; the pipeline runs on without it")
        return self

    def close(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()
        if self.server is not None:
            self.server.close()
