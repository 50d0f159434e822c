#!/usr/bin/env python3
"""Round-trip latency of the idempotency-key index (FirestoreIndex) against the Firestore emulator.

    .venv/bin/python scripts/bench-firestore-keys.py [rounds]

Starts the Google Cloud CLI's Firestore emulator on a free loopback port, then times `rounds`
batchGet (1 key, what deliver does per pushed message) and batchWrite (a delivered key + an
outcome marker) calls. Loopback figures: a floor, not what Firestore in a region gives.
"""

import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagpipe.storage.bigquery import FirestoreIndex, doc_id  # noqa: E402
from tests.gcp.conftest import FIRESTORE_JAR, Server, free_port  # noqa: E402


def main(rounds: int = 200) -> None:
    port = free_port()
    argv = ["java", "-Duser.language=en", "-cp", FIRESTORE_JAR,
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
            "--host=127.0.0.1", f"--port={port}"]
    server = Server("firestore emulator", argv, port, timeout=60)
    try:
        index = FirestoreIndex("bench", "keys", emulator_host=server.host)
        index.get("delivered", ["warm-up"])
        reads, writes = [], []
        for i in range(rounds):
            t = time.perf_counter()
            index.get("delivered", [doc_id("meta", f"k{i}")])
            reads.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            index.create([("delivered", doc_id("meta", f"k{i}"), {"event_uid": "u", "expire_at": datetime.now(UTC)}),
                          ("outcomes", doc_id("h", str(i), "meta"), {"outcome": "delivered"})])
            writes.append((time.perf_counter() - t) * 1000)
        for name, values in (("batchGet, 1 key", reads), ("batchWrite, 2 docs", writes)):
            values.sort()
            print(f"{name:20s} p50 {statistics.median(values):6.1f} ms   p95 {values[int(len(values) * 0.95)]:6.1f} ms")
    finally:
        server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
