"""5. What a million events cost on GCP in the deployed shape (terraform/), from list prices, with the
CPU figures measured by the other sections where they ran, and every other input an assumption
stated here. Next to sGTM on Cloud Run and hosted sGTM (Stape).

The deployed shape (terraform/modules/{functions,pubsub}): per hit, collect (public, async) publishes
raw-hits; a push subscription calls transform once per hit; transform publishes one delivery task per
(event, destination) and the raw hit + event rows to records-* topics; a push subscription calls
deliver once per task (functions/deliver/main.py batches the pushes one instance holds at once into
one vendor request, but each push is still one invocation, billed as such); deliver publishes its
outcome rows. Rows reach BigQuery through BigQuery
subscriptions; dedup/outcome markers live in Firestore (2 writes, 1 read, 2 TTL deletes per delivery).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

# --------------------------------------------------------------------------- list prices (USD)
# Each: value, where it was read, when. Tier 1 region (e.g. us-central1), request-based billing.
PRICES = {
    "run_vcpu_s": (0.000024, "cloud.google.com/run/pricing: $0.00002400 / vCPU-second beyond free tier, request-based billing, Tier 1", "read 2026-11-25 (stored copy)"),
    "run_gib_s": (0.0000025, "cloud.google.com/run/pricing: $0.00000250 / GiB-second, request-based billing, Tier 1", "read 2026-11-25 (stored copy)"),
    "run_request": (0.40 / 1e6, "cloud.google.com/run/pricing: $0.40 per million requests", "read 2026-11-25 (stored copy)"),
    "run_idle_vcpu_s": (0.000018, "cloud.google.com/run/pricing: $0.00001800 / vCPU-second, instance-based billing (used here as the upper bound for an idle min instance)", "read 2026-11-25 (stored copy)"),
    "run_idle_gib_s": (0.000002, "cloud.google.com/run/pricing: $0.00000200 / GiB-second, instance-based billing (upper bound for idle)", "read 2026-11-25 (stored copy)"),
    "pubsub_tib": (40.0, "cloud.google.com/pubsub/pricing: Message Delivery Basic throughput $40 per TiB (publish and subscribe both count)", "transcribed 2026-09-20 (api-evangelist/google plans/google-plans-pricing.yml)"),
    "pubsub_bq_tib": (50.0, "cloud.google.com/pubsub/pricing: BigQuery subscriptions throughput $50 per TiB", "transcribed 2026-09-20 (same file)"),
    "firestore_read": (0.03 / 1e5, "firebase.google.com/docs/firestore/standard-edition: $0.03 per 100k reads (us-central1)", "read 2026-11-25 (stored copy)"),
    "firestore_write": (0.09 / 1e5, "same page: $0.09 per 100k writes (us-central1)", "read 2026-11-25 (stored copy)"),
    "firestore_delete": (0.01 / 1e5, "same page: $0.01 per 100k deletes (TTL deletes are billed deletes, no free tier: cloud.google.com/firestore/pricing)", "read 2026-11-25 (stored copy)"),
    "logging_gib": (0.50, "cloud.google.com/stackdriver/pricing: Logging storage $0.50 per GiB ingested, first 50 GiB per project per month free", "transcribed 2026-09-12 (api-evangelist/google-cloud-logging)"),
}

# --------------------------------------------------------------------------- assumptions
ASSUMPTIONS = {
    "destinations": (2, "each event goes to 2 destinations (Meta + GA4); deliver runs once per (event, destination)"),
    "events_per_hit": (1, "one event per hit (gtag sends most hits with one event; batching only lowers the cost)"),
    "pubsub_min_bytes": (1000, "Pub/Sub bills at least 1,000 bytes per message in a publish/push request (our reading of the pricing page; not re-checked this session)"),
    "memory_gib": (0.5, "512Mi per function (terraform default)"),
    "collect_wait_s": (0.015, "collect waits one Pub/Sub publish round trip per hit (assumed 15 ms in-region)"),
    "transform_wait_s": (0.030, "transform waits its publishes (deliveries + records) before answering the push (assumed 30 ms)"),
    "deliver_wait_s": (0.350, "a deliver push waits the PushBatcher linger (TAGPIPE_PUSH_LINGER_MS, 100 ms) + the vendor (Meta CAPI / GA4 MP ~200 ms, assumed) + Firestore batchGet/batchWrite (2 x 25 ms)"),
    "request_log_bytes": (1100, "one Cloud Run request log entry (run.googleapis.com/requests) per invocation, ~1.1 KB each, unless excluded"),
    "outcome_log_bytes": (1500, "deliver logs outcome_counts + match_key_counts (~5 identifiers) per delivery: ~6 JSON lines of ~250 B"),
    "monthly_events": ((10e6, 100e6), "two volumes: 10M and 100M events a month, spread evenly (Poisson arrivals)"),
    "sgtm_min_instances": (2, "sGTM on Cloud Run kept at 2 always-on 1 vCPU / 512 MiB instances (production guidance varies, 2-3)"),
    "sgtm_request_cpu_s": (0.010, "sGTM (Node.js) CPU per incoming request (assumed 10 ms; not measured here)"),
    "sgtm_requests_per_event": (1.3, "sGTM counts script loads (gtm.js / gtag.js) as requests too (assumed 0.3 per event)"),
}


def _a(key):
    return ASSUMPTIONS[key][0]


def _p(key):
    return PRICES[key][0]


def message_sizes() -> dict[str, int]:
    """Bytes of the messages the pipeline publishes, measured on the real models."""
    from benchmarks import memory, payloads
    from shared.models import RawHit
    from shared.pipeline.transform import Transformer
    from shared.transport.base import DELIVERIES, RAW_HITS

    shape = payloads.gtag_get()
    query = shape.path.split("?", 1)[1]
    raw = RawHit(source="gtag", method="GET", path="/g/collect", query=query, body="",
                 headers={"user-agent": payloads.CHROME_UA, "accept-language": "es-419"},
                 cookies={"_ga": "GA1.1.2077486026.1712887266", "_fbp": "fb.1.1712887266123.1098115397"},
                 client_ip="203.0.113.7")
    raw_bytes = len(raw.model_dump_json())
    with tempfile.TemporaryDirectory(prefix="tagpipe-bench-cost-") as tmp:
        rt = memory._runtime(Path(tmp))
        rt.bus.publish(RAW_HITS, raw.model_dump_json().encode())
        msgs = rt.bus.pull("transform", 10)
        Transformer(rt).handle(msgs)
        tasks = rt.bus.pull("deliver", 10)
        task_bytes = max((len(m.data) for m in tasks), default=1500)
        event_doc = rt.store.query("SELECT LENGTH(doc) FROM events")
        rt.close()
    _ = DELIVERIES
    return {"raw_hit": raw_bytes, "delivery_task": task_bytes,
            "event_row": event_doc[0][0] if event_doc else 1500, "outcome_row": 400}


def _billable_s(rate: float, wait: float, cpu: float) -> float:
    """Billable instance-seconds per request at `rate` requests/s on one instance (request-based
    billing bills the time with at least one request in flight): (1 - e^(-rate*wait)) / rate,
    and never less than the CPU the request needs."""
    busy = (1 - math.exp(-rate * wait)) / rate if rate > 0 else wait
    return max(busy, cpu)


# A what-if, not what terraform deploys today: the levers the deployed model shows (see docs/benchmarks.md).
BATCHED = {
    "batch": 500,  # tasks (and hits) per transform/deliver invocation: a pull loop, not one push per message
    "firestore_writes": 1, "firestore_deletes": 1,  # one delivered-key marker per delivery; outcome rows
    # de-duplicated in BigQuery (the *_unique views exist) instead of an exists=false marker
    "outcome_log_bytes": 4,  # outcome_counts aggregated per batch: ~2 KB per 500 deliveries
}


def model(sizes: dict[str, int], cpu: dict[str, float], monthly_events: float, exclude_request_logs: bool,
          batched: bool = False) -> dict:
    d, per_hit = _a("destinations"), _a("events_per_hit")
    month_s = 30 * 86400
    ev_rate = monthly_events / month_s
    m = 1e6  # per million events
    hits = m / per_hit
    deliveries = m * d
    gib = _a("memory_gib")

    def run_cost(requests: float, rate: float, wait: float, cpu_s: float, batchable: bool = True) -> float:
        if batched and batchable:  # one invocation per batch: waits once, pays CPU per message
            b = BATCHED["batch"]
            per = _billable_s(rate / b, wait, cpu_s * b)
            return requests / b * (per * (_p("run_vcpu_s") + gib * _p("run_gib_s")) + _p("run_request"))
        per = _billable_s(rate, wait, cpu_s)
        return requests * (per * (_p("run_vcpu_s") + gib * _p("run_gib_s")) + _p("run_request"))

    lines = {
        "Cloud Run functions: collect": run_cost(hits, ev_rate / per_hit, _a("collect_wait_s"), cpu["collect"], False),
        "Cloud Run functions: transform": run_cost(hits, ev_rate / per_hit, _a("transform_wait_s"), cpu["transform"]),
        "Cloud Run functions: deliver": run_cost(deliveries, ev_rate * d, _a("deliver_wait_s"), cpu["deliver"]),
    }
    mb = _a("pubsub_min_bytes")

    def billed(n):
        return max(n, mb)

    tib = 2**40
    # publish + push delivery of the pipeline topics
    pipeline_bytes = hits * 2 * billed(sizes["raw_hit"]) + deliveries * 2 * billed(sizes["delivery_task"])
    # records-*: published once, written by a BigQuery subscription
    records = hits * billed(sizes["raw_hit"]) + m * billed(sizes["event_row"]) + deliveries * billed(sizes["outcome_row"])
    lines["Pub/Sub: raw-hits + deliveries (publish + push)"] = pipeline_bytes / tib * _p("pubsub_tib")
    lines["Pub/Sub: records-* publish"] = records / tib * _p("pubsub_tib")
    lines["Pub/Sub: BigQuery subscriptions (rows into BigQuery)"] = records / tib * _p("pubsub_bq_tib")
    writes, deletes = (BATCHED["firestore_writes"], BATCHED["firestore_deletes"]) if batched else (2, 2)
    lines["Firestore: dedup + outcome markers"] = deliveries * (writes * _p("firestore_write") + _p("firestore_read")
                                                               + deletes * _p("firestore_delete"))
    log_bytes = deliveries * (BATCHED["outcome_log_bytes"] if batched else _a("outcome_log_bytes"))
    if not exclude_request_logs:
        log_bytes += (2 * hits + deliveries) * _a("request_log_bytes")
    lines["Cloud Logging (above the 50 GiB free)"] = log_bytes / 2**30 * _p("logging_gib")
    total = sum(lines.values())
    return {"lines": lines, "total": total, "log_gib_per_million": log_bytes / 2**30}


def sgtm(monthly_events: float) -> dict:
    """sGTM on Cloud Run: always-on instances plus per-request CPU beyond what they absorb."""
    month_s = 30 * 86400
    n = _a("sgtm_min_instances")
    fixed = n * month_s * (_p("run_idle_vcpu_s") + 0.5 * _p("run_idle_gib_s"))
    requests = monthly_events * _a("sgtm_requests_per_event")
    busy = requests * _a("sgtm_request_cpu_s")
    extra = max(0.0, busy - n * month_s * 0.6) * (_p("run_vcpu_s") + 0.5 * _p("run_gib_s"))  # beyond 60% of the floor
    total = fixed + extra
    return {"monthly": total, "per_million": total / (monthly_events / 1e6), "fixed_monthly": fixed}


def run(previous: dict | None = None, log=print) -> dict:
    previous = previous or {}
    cpu = {"collect": 0.0004, "transform": 0.00015, "deliver": 0.0001}  # defaults when not measured this run
    source = "defaults"
    coll = (previous.get("collect") or {}).get("modes", {}).get("gcf-asgi", {})
    mem = previous.get("memory") or {}
    hello = coll.get("hello-world", {})
    if coll.get("gtag GET /g/collect", {}).get("server_cpu"):
        r = coll["gtag GET /g/collect"]
        cpu["collect"] = r["server_cpu"] / r["rps"]
        source = "measured"
    if mem.get("cpu_seconds") and hello.get("rps"):
        per_event = mem["cpu_seconds"] / mem["events"]  # transform + deliver + stores, one destination
        push_overhead = hello["server_cpu"] / hello["rps"] if hello.get("server_cpu") else 1 / hello["rps"]
        cpu["transform"] = per_event * 0.75 + push_overhead
        cpu["deliver"] = per_event * 0.25 + push_overhead  # push delivers one task per request
    sizes = message_sizes()
    out: dict = {"cpu_per_request_s": cpu, "cpu_source": source, "message_bytes": sizes, "volumes": {},
                 "prices": {k: {"value": v, "source": s, "date": d} for k, (v, s, d) in PRICES.items()},
                 "assumptions": {k: {"value": v, "meaning": s} for k, (v, s) in ASSUMPTIONS.items()}}
    for volume in _a("monthly_events"):
        with_logs = model(sizes, cpu, volume, exclude_request_logs=False)
        without = model(sizes, cpu, volume, exclude_request_logs=True)
        batched = model(sizes, cpu, volume, exclude_request_logs=True, batched=True)
        out["volumes"][f"{volume / 1e6:.0f}M"] = {"tagpipe": with_logs, "tagpipe_request_logs_excluded": without,
                                                  "tagpipe_batched_what_if": batched, "sgtm_cloud_run": sgtm(volume)}
        log(f"  {volume / 1e6:.0f}M events/month: tagpipe ${with_logs['total']:.2f}/M "
            f"(${without['total']:.2f}/M with request logs excluded, ${batched['total']:.2f}/M batched what-if); "
            f"sGTM on Cloud Run ${sgtm(volume)['per_million']:.2f}/M")
    return out


def table(result: dict) -> list[str]:
    vols = list(result["volumes"])
    last = vols[-1]
    lines = [f"Per million events, {ASSUMPTIONS['destinations'][0]} destinations each, CPU per request "
             f"({result['cpu_source']}): " + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in result["cpu_per_request_s"].items())
             + "; message bytes: " + json.dumps(result["message_bytes"]), "",
             "| line | " + " | ".join(f"deployed, {v}/month" for v in vols) + f" | what-if (batched), {last}/month |",
             "|---|" + "---:|" * (len(vols) + 1)]
    keys = list(result["volumes"][vols[0]]["tagpipe"]["lines"])
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"${result['volumes'][v]['tagpipe']['lines'][k]:.3f}" for v in vols)
                     + f" | ${result['volumes'][last]['tagpipe_batched_what_if']['lines'][k]:.3f} |")
    lines.append("| **total per million events** | " + " | ".join(f"**${result['volumes'][v]['tagpipe']['total']:.2f}**" for v in vols)
                 + f" | **${result['volumes'][last]['tagpipe_batched_what_if']['total']:.2f}** |")
    lines.append("| total with Cloud Run request logs excluded (log sink exclusion) | "
                 + " | ".join(f"${result['volumes'][v]['tagpipe_request_logs_excluded']['total']:.2f}" for v in vols) + " | (excluded) |")
    lines.append("| sGTM on Cloud Run (2 always-on instances + CPU beyond them) | "
                 + " | ".join(f"${result['volumes'][v]['sgtm_cloud_run']['per_million']:.2f}" for v in vols) + " | |")
    lines.append("| Stape (hosted sGTM) | per-container plans by monthly request quota, every incoming request counted, "
                 "script loads included (stape.io helpdesk, 2025-08-06 / 2026-06-05); plan prices not in this "
                 "session's sources: not modelled |" + " |" * len(vols))
    lines += ["", f"what-if (not deployed today): transform and deliver take {BATCHED['batch']} messages per invocation "
              "(a pull loop instead of one push per message), one Firestore marker per delivery (outcome rows "
              "de-duplicated by the BigQuery *_unique views), outcome_counts logged per batch, request logs excluded."]
    return lines
