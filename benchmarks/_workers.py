"""The local stack's transform / deliver / archive workers alone, in their own process (no HTTP):
with `python -m benchmarks._serve uvicorn collect ...` beside it on the same storage dir, this is the
"worker process" layout the pipeline benchmark compares with `tagpipe run`'s threads (one GIL).

    python -m benchmarks._workers        (TAGPIPE_CONFIG names the config; SIGTERM stops it)
"""

from __future__ import annotations

import signal
import threading


def main() -> None:
    from shared.local import Workers
    from shared.runtime import build_runtime, set_runtime

    runtime = build_runtime()
    set_runtime(runtime)
    runtime.bus.release_leases()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    workers = Workers(runtime).start()
    print("workers started", flush=True)
    done.wait()
    workers.close()
    runtime.close()


if __name__ == "__main__":
    main()
