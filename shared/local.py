"""The local stack: collect on HTTP plus the transform, deliver and archive workers, one process,
with the monitoring dashboard (127.0.0.1:8081) and the alert rules beside them.

`make run` starts it. Everything durable lives under storage.dir (.tagpipe/): stop it with
Ctrl-C (or SIGTERM) and start it again, and it resumes from the queue where it left off.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from shared.config import Config
from shared.erase import RetentionJob
from shared.monitoring.service import Monitoring
from shared.pipeline.archive import DeadLetterArchive
from shared.pipeline.deliver import Deliverer
from shared.pipeline.stage import run_worker
from shared.pipeline.transform import Transformer
from shared.runtime import Runtime, build_runtime, set_runtime
from shared.transport.local import LocalBus

log = logging.getLogger("tagpipe.local")
COLLECT_SOURCE = Path(__file__).resolve().parents[1] / "functions" / "collect" / "main.py"


def collect_app():
    """The collect function as Cloud Functions serves it: functions-framework's ASGI app."""
    if COLLECT_SOURCE.exists():
        from functions_framework.aio import create_asgi_app

        return create_asgi_app(target="collect", source=str(COLLECT_SOURCE))
    from starlette.applications import Starlette
    from starlette.routing import Route

    from shared.pipeline.collect import handle

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST", "OPTIONS", "HEAD"])])


class Workers:
    """transform, deliver and the dead-letter archive, each on its own thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stop = threading.Event()
        d = runtime.config.delivery
        self.threads = [
            threading.Thread(target=run_worker, name="transform", daemon=True,
                             args=(runtime.bus, Transformer(runtime), self.stop), kwargs={"batch": 200}),
            threading.Thread(target=run_worker, name="deliver", daemon=True,
                             args=(runtime.bus, Deliverer(runtime), self.stop),
                             kwargs={"batch": d.pull_batch, "linger": d.linger_ms / 1000}),
            threading.Thread(target=run_worker, name="archive", daemon=True,
                             args=(runtime.bus, DeadLetterArchive(runtime), self.stop), kwargs={"batch": 200}),
        ]

    def start(self) -> Workers:
        for t in self.threads:
            t.start()
        days = self.runtime.config.privacy.retention_days
        if days > 0:  # [privacy] retention_days: purge old local records at start, then daily
            self.retention = RetentionJob(self.runtime.config.storage.dir, days, self.stop).start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout)


def _exit_cleanly(signum, frame):
    raise SystemExit(0)


def run(config: Config | None = None, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    runtime = build_runtime(config)
    set_runtime(runtime)
    cfg = runtime.config
    if isinstance(runtime.bus, LocalBus):
        released = runtime.bus.release_leases()  # work a killed previous run had in hand
        if released:
            log.info("resuming %d messages left in flight by the previous run", released)
    monitoring = Monitoring(runtime)  # reads [monitoring] first: a bad table stops start-up here
    workers = Workers(runtime).start()
    monitoring.start()  # the dashboard (127.0.0.1:8081) and the alert rules, on their own threads
    host = host or cfg.server.host
    port = port or cfg.server.port
    log.info("tagpipe local stack: collect on http://%s:%d (config %s, data in %s)", host, port, cfg.source, cfg.storage.dir)
    server = uvicorn.Server(uvicorn.Config(collect_app(), host=host, port=port, log_level="warning",
                                           access_log=False, lifespan="off"))
    # uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown: turn both into a clean exit
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        monitoring.close()
        workers.close()
        runtime.close()
        log.info("tagpipe stopped; queued work resumes at the next start")
