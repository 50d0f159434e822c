"""The local stack: collect on HTTP plus the transform, deliver and archive workers, one process,
with the monitoring dashboard (127.0.0.1:8081) and the alert rules beside them. With
`[server] workers = "process"` the workers run in a child process instead (WorkerProcess).

`make run` starts it. Everything durable lives under storage.dir (.tagpipe/): stop it with
Ctrl-C (or SIGTERM) and start it again, and it resumes from the queue where it left off.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from pathlib import Path

from tagpipe.config import Config
from tagpipe.monitoring.service import Monitoring
from tagpipe.ops.erase import RetentionJob, retention_plan
from tagpipe.pipeline.archive import DeadLetterArchive
from tagpipe.pipeline.deliver import Deliverer
from tagpipe.pipeline.stage import run_worker
from tagpipe.pipeline.transform import Transformer
from tagpipe.runtime import Runtime, build_runtime, set_runtime
from tagpipe.settings import Settings
from tagpipe.transport.local import LocalBus

log = logging.getLogger("tagpipe.local")
COLLECT_SOURCE = Path(__file__).resolve().parents[3] / "functions" / "collect" / "main.py"


def collect_app():
    """The collect function as Cloud Functions serves it: functions-framework's ASGI app."""
    if COLLECT_SOURCE.exists():
        from functions_framework.aio import create_asgi_app

        return create_asgi_app(target="collect", source=str(COLLECT_SOURCE))
    from starlette.applications import Starlette
    from starlette.routing import Route

    from tagpipe.pipeline.collect import handle

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
        plan = retention_plan(self.runtime.config.privacy)
        if any(plan.values()):  # [privacy] retention: purge old local records at start, then daily
            self.retention = RetentionJob(self.runtime.config.storage.dir, plan, self.stop).start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout)


class WorkerProcess:
    """The Workers in a child process (`[server] workers = "process"`): collect keeps its own GIL while a
    backlog is drained. The child is started again if it dies, and leaves when this process is gone
    (even after a SIGKILL). Both processes share storage.dir: the queue and the store are SQLite files."""

    def __init__(self, runtime: Runtime) -> None:
        source = runtime.config.source
        self.config_path = None if source == "<defaults>" else source
        self.stop = threading.Event()
        self.process: multiprocessing.process.BaseProcess | None = None
        self.restarts = 0

    def start(self) -> WorkerProcess:
        self._spawn()
        threading.Thread(target=self._supervise, name="worker-process", daemon=True).start()
        return self

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or sockets inherited
        self.process = ctx.Process(target=worker_main, args=(self.config_path, os.getpid()), name="tagpipe-workers")
        self.process.start()

    def _supervise(self) -> None:
        while not self.stop.wait(1.0):
            if self.process is not None and not self.process.is_alive() and not self.stop.is_set():
                log.error("the worker process exited (code %s); starting it again", self.process.exitcode)
                self.restarts += 1
                self._spawn()  # what it had leased comes back when the leases expire (ack deadline)

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        if self.process is not None and self.process.is_alive():
            self.process.terminate()  # SIGTERM: the child stops its workers cleanly
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()


def worker_main(config_path: str | None, parent_pid: int) -> None:
    """The child of WorkerProcess."""
    from tagpipe.config import load_config
    from tagpipe.monitoring.logs import configure_from_environment

    configure_from_environment()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C reaches the whole process group
    runtime = build_runtime(load_config(config_path))
    set_runtime(runtime)
    workers = Workers(runtime).start()
    while not stop.wait(1.0):
        if os.getppid() != parent_pid:  # the stack was killed: do not outlive it
            log.warning("the local stack is gone; the worker process stops")
            break
    workers.close()
    runtime.close()


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
    from tagpipe.ops.test_send import send_test_event

    monitoring = Monitoring(runtime, send_test_event)  # reads [monitoring] first: a bad table stops start-up here
    workers = (WorkerProcess if cfg.server.workers == "process" else Workers)(runtime).start()
    monitoring.start()  # the dashboard (127.0.0.1:8081) and the alert rules, on their own threads
    host = host or cfg.server.host
    port = port or Settings.load().port or cfg.server.port
    log.info("tagpipe local stack: collect on http://%s:%d (config %s, data in %s)", host, port, cfg.source, cfg.storage.dir)
    from tagpipe.ops.http_server import CountedRefusals, guarded_protocol
    from tagpipe.pipeline.collect import refuse_connection

    protocol = guarded_protocol(
        cfg.server.header_timeout,
        on_timeout=lambda: refuse_connection(
            "request_timeout", f"the request headers did not arrive within {cfg.server.header_timeout:g} s", 408),
        on_malformed=lambda: refuse_connection("malformed_http", "a request the HTTP parser refused", 400))
    app = CountedRefusals(collect_app(), refuse_connection)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           access_log=False, lifespan="off", http=protocol,
                                           limit_concurrency=cfg.server.max_connections,
                                           # collect reads X-Forwarded-For itself, per server.trusted_proxies;
                                           # uvicorn's own would trust any client's header from a local peer
                                           proxy_headers=False))
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
