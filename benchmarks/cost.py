"""5. What a million events cost on GCP, from list prices, in two shapes, with the CPU figures measured by
the other sections where they ran, and every other input an assumption stated here. Next to sGTM on Cloud
Run and hosted sGTM (Stape).

(a) push, as deployed (terraform/modules/{functions,pubsub}): per hit, collect (public, async) publishes
raw-hits; a push subscription calls transform once per hit; transform publishes one delivery task per
(event, destination) and the raw hit + event rows to records-* topics; a push subscription calls deliver
once per task (functions/deliver/main.py batches the pushes one instance holds at once into one vendor
request, but each push is still one invocation, billed as such); deliver publishes its outcome rows.
(b) schedule: transform and deliver drain pull subscriptions in batches of up to 1,000, one invocation a
minute per stage and per destination (per-destination filtered subscriptions), triggered by Cloud
Scheduler; collect unchanged.
Rows reach BigQuery through BigQuery subscriptions; outcome and dedup markers live in Firestore
(`firestore_ops`: per delivery an outcome marker, plus a read and a delivered marker for the events in
the [delivery] dedup scope; each created marker is later a TTL delete). The functions' Cloud Run request
logs are excluded from the _Default sink (terraform/modules/monitoring/request_logs.tf, below HTTP 500).
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
    "scheduler_job": (0.10, "cloud.google.com/scheduler/pricing: $0.10 per job per month, 3 jobs per billing account free (free jobs not counted here)", "from memory, not re-checked this session (no web access)"),
    "logging_gib": (0.50, "cloud.google.com/stackdriver/pricing: Logging storage $0.50 per GiB ingested, first 50 GiB per project per month free", "transcribed 2026-09-12 (api-evangelist/google-cloud-logging)"),
}

# --------------------------------------------------------------------------- assumptions
ASSUMPTIONS = {
    "destinations": (2, "each event goes to 2 destinations (Meta + GA4); deliver runs once per (event, destination)"),
    "events_per_hit": (1, "one event per hit (gtag sends most hits with one event; batching only lowers the cost)"),
    "pubsub_min_bytes": (1000, "Pub/Sub bills at least 1,000 bytes per publish, push or pull request, whatever the message size (our reading of cloud.google.com/pubsub/pricing; not re-checked this session, no web access). A push carries one message, so each push and each single-message publish bills 1 KB; a batched publish or a 1,000-message pull bills its bytes"),
    "memory_gib": (0.5, "512Mi per function (terraform default)"),
    "collect_wait_s": (0.015, "collect waits one Pub/Sub publish round trip per hit (assumed 15 ms in-region)"),
    "transform_wait_s": (0.030, "transform waits its publishes (deliveries + records) before answering the push (assumed 30 ms)"),
    "deliver_wait_s": (0.350, "a deliver push waits the PushBatcher linger (TAGPIPE_PUSH_LINGER_MS, 100 ms) + the vendor (Meta CAPI / GA4 MP ~200 ms, assumed) + Firestore batchGet/batchWrite (2 x 25 ms)"),
    "request_log_bytes": (1100, "one Cloud Run request log entry (run.googleapis.com/requests) per invocation, ~1.1 KB each; excluded by terraform/modules/monitoring (request_logs, default on) except 5xx, so only the 'request logs kept' variant counts them"),
    "outcome_log_bytes": (1500, "deliver logs outcome_counts + match_key_counts (~5 identifiers) per delivery: ~6 JSON lines of ~250 B"),
    "conversion_share": (0.05, "share of events in dedup = \"conversions\" scope (purchase, generate_lead, sign_up, ...): a D2C shop's conversions are ~1-3% of its events; 5% is a margin. Browse events keep only the outcome marker"),
    "schedule_interval_s": (60, "schedule shape: Cloud Scheduler triggers each drain job once a minute"),
    "schedule_batch": (1000, "schedule shape: messages per pull (Pub/Sub's maximum per pull request)"),
    "schedule_pull_wait_s": (0.10, "schedule shape: per pull of a batch: the pull, the ack and the stage's publishes (3 round trips, ~30 ms each, assumed)"),
    "schedule_overhead_cpu_s": (0.02, "schedule shape: per drain invocation (warm: an instance called every minute stays up; HTTP + empty pull), assumed"),
    "transform_cpu_share": (0.75, "share of the pipeline bench's CPU per event that is transform (the rest is deliver, split over destinations), as for the push model"),
    "events_per_cpu_second": (2350, "the pipeline bench (section 2, threads layout burst): ~2,350 events per CPU-second for transform + deliver to Meta + GA4 together (the stack process also runs collect, so this over-counts); used when this run did not measure it"),
    "vendor_requests": ({"meta": {"events_per_request": 1000, "latency_s": 0.25}, "ga4": {"events_per_request": 1.2, "latency_s": 0.05}},
                        "schedule shape: Meta CAPI takes up to 1,000 events per request (~250 ms); GA4 MP takes one user (client_id) per request, ~1.2 events per request within a minute's batch (~50 ms in-region); assumed latencies"),
    "vendor_concurrency": (8, "schedule shape: vendor requests in flight at once per drain invocation ([delivery] vendor_concurrency, default 8; before it, deliver sent a batch's requests one after another: the 'one at a time' variant)"),
    "firestore_wait_s": (0.05, "schedule shape: per pull with dedup-scope events: Firestore batchGet + batchWrite (2 x 25 ms)"),
    "schedule_log_bytes_per_batch": (2000, "schedule shape: outcome_counts + match_key_counts lines per drained batch and job (~8 lines of ~250 B)"),
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


# Firestore document operations per delivery (shared/storage/bigquery.py; counted against the emulator by
# tests/gcp/test_firestore_ops.py): one exists=false create per delivery (the outcome marker, or for an event
# in the destination's [delivery] dedup scope its delivered marker, which stands for the outcome too), and
# for an event in the scope a batchGet of its delivered marker first. Every created document is deleted
# again by the TTL policy (a billed delete). Before the merged marker: 1 + guarded writes and deletes.
# markers="separate": the layout before that (an outcome marker and a delivered marker); markers="merged": an
# outcome marker for every delivery; markers="scope_only" (as built): events outside the scope have no marker
# at all (BigQueryStore exact_outcomes; their rare repeat rows collapse in the outcomes_unique view, and the
# outcome_counts log metric counts a redelivered task twice). With dedup = "all" the two are the same.
def firestore_ops(dedup: str, conversion_share: float, markers: str = "scope_only") -> dict[str, float]:
    guarded = {"all": 1.0, "conversions": conversion_share, "none": 0.0}[dedup]
    writes = {"merged": 1.0, "separate": 1.0 + guarded, "scope_only": guarded}[markers]
    return {"reads": guarded, "writes": writes, "deletes": writes}


def _firestore_cost(deliveries: float, ops: dict[str, float]) -> float:
    return deliveries * (ops["reads"] * _p("firestore_read") + ops["writes"] * _p("firestore_write")
                         + ops["deletes"] * _p("firestore_delete"))


def _dominant(lines: dict[str, float], total: float) -> list[list]:
    top = sorted(lines.items(), key=lambda kv: -kv[1])[:3]
    return [[k, round(v, 4), round(v / total, 3) if total else 0.0] for k, v in top]


def _collect_cost(cpu: dict[str, float], monthly_events: float) -> float:
    """collect per million events: one invocation per hit in both shapes (it is the public HTTP endpoint)."""
    per_hit = _a("events_per_hit")
    rate = monthly_events / (30 * 86400) / per_hit
    per = _billable_s(rate, _a("collect_wait_s"), cpu["collect"])
    return 1e6 / per_hit * (per * (_p("run_vcpu_s") + _a("memory_gib") * _p("run_gib_s")) + _p("run_request"))


def model(sizes: dict[str, int], cpu: dict[str, float], monthly_events: float, exclude_request_logs: bool,
          dedup: str = "all", markers: str = "scope_only") -> dict:
    """(a) The push shape as deployed: one invocation per message."""
    d, per_hit = _a("destinations"), _a("events_per_hit")
    month_s = 30 * 86400
    ev_rate = monthly_events / month_s
    m = 1e6  # per million events
    hits = m / per_hit
    deliveries = m * d
    gib = _a("memory_gib")

    def run_cost(requests: float, rate: float, wait: float, cpu_s: float) -> float:
        per = _billable_s(rate, wait, cpu_s)
        return requests * (per * (_p("run_vcpu_s") + gib * _p("run_gib_s")) + _p("run_request"))

    lines = {
        "Cloud Run functions: collect": _collect_cost(cpu, monthly_events),
        "Cloud Run functions: transform": run_cost(hits, ev_rate / per_hit, _a("transform_wait_s"), cpu["transform"]),
        "Cloud Run functions: deliver": run_cost(deliveries, ev_rate * d, _a("deliver_wait_s"), cpu["deliver"]),
        "Cloud Scheduler (drain jobs)": 0.0,
    }
    mb = _a("pubsub_min_bytes")

    def billed(n):  # one message per request in this shape: each is billed the per-request minimum
        return max(n, mb)

    tib = 2**40
    # publish + push delivery of the pipeline topics
    pipeline_bytes = hits * 2 * billed(sizes["raw_hit"]) + deliveries * 2 * billed(sizes["delivery_task"])
    # records-*: published once, written by a BigQuery subscription
    records = hits * billed(sizes["raw_hit"]) + m * billed(sizes["event_row"]) + deliveries * billed(sizes["outcome_row"])
    lines["Pub/Sub: raw-hits + deliveries (publish + delivery)"] = pipeline_bytes / tib * _p("pubsub_tib")
    lines["Pub/Sub: records-* publish"] = records / tib * _p("pubsub_tib")
    lines["Pub/Sub: BigQuery subscriptions (rows into BigQuery)"] = records / tib * _p("pubsub_bq_tib")
    ops = firestore_ops(dedup, _a("conversion_share"), markers)
    lines["Firestore: dedup + outcome markers"] = _firestore_cost(deliveries, ops)
    log_bytes = deliveries * _a("outcome_log_bytes")
    if not exclude_request_logs:
        log_bytes += (2 * hits + deliveries) * _a("request_log_bytes")
    lines["Cloud Logging (above the 50 GiB free)"] = log_bytes / 2**30 * _p("logging_gib")
    total = sum(lines.values())
    return {"shape": "push", "dedup": dedup, "request_logs_excluded": exclude_request_logs, "lines": lines,
            "total": total, "log_gib_per_million": log_bytes / 2**30, "firestore_ops_per_delivery": ops,
            "invocations_per_million": hits * 2 + deliveries, "dominant": _dominant(lines, total)}


def model_schedule(sizes: dict[str, int], cpu: dict[str, float], events_per_cpu_s: float, monthly_events: float,
                   dedup: str = "conversions", vendor_concurrency: int | None = None, markers: str = "scope_only") -> dict:
    """(b) The schedule shape: Cloud Scheduler triggers one drain invocation a minute for transform and one per
    destination for deliver; each pulls batches of up to `schedule_batch` until the subscription is empty.
    Billed instance time = CPU per event (the pipeline bench) + the waits of each pull and vendor request."""
    d, per_hit = _a("destinations"), _a("events_per_hit")
    ticks = 30 * 86400 / _a("schedule_interval_s")
    batch = _a("schedule_batch")
    per_tick = monthly_events / ticks
    m = 1e6
    scale = m / monthly_events  # monthly figures -> per million events
    hits, deliveries = m / per_hit, m * d
    gib = _a("memory_gib")
    rate = _p("run_vcpu_s") + gib * _p("run_gib_s")
    cpu_event = 1 / events_per_cpu_s  # transform + deliver (all destinations) per event
    concurrency = vendor_concurrency or _a("vendor_concurrency")
    ops = firestore_ops(dedup, _a("conversion_share"), markers)
    guarded = ops["reads"]

    def invocation(cpu_s: float, pulls: float, extra_wait_s: float) -> float:
        return (_a("schedule_overhead_cpu_s") + cpu_s + pulls * _a("schedule_pull_wait_s") + extra_wait_s) * rate \
            + _p("run_request")

    pulls_t = max(1, math.ceil(per_tick / per_hit / batch))
    transform = ticks * invocation(per_tick * cpu_event * _a("transform_cpu_share"), pulls_t, 0.0)
    lines = {"Cloud Run functions: collect": _collect_cost(cpu, monthly_events),
             "Cloud Run functions: transform": transform * scale}
    deliver = 0.0
    for vendor in _a("vendor_requests").values():
        pulls = max(1, math.ceil(per_tick / batch))
        requests = per_tick / vendor["events_per_request"] if vendor["events_per_request"] < batch else pulls
        waits = requests * vendor["latency_s"] / concurrency
        if guarded:
            waits += pulls * _a("firestore_wait_s")
        cpu_s = per_tick * cpu_event * (1 - _a("transform_cpu_share")) / d
        deliver += ticks * invocation(cpu_s, pulls, waits)
    lines["Cloud Run functions: deliver"] = deliver * scale
    lines["Cloud Scheduler (drain jobs)"] = (1 + d) * _p("scheduler_job") * scale
    tib = 2**40
    mb = _a("pubsub_min_bytes")
    # collect still publishes one hit per request (billed the minimum); transform publishes and both stages
    # pull in batches (billed by bytes); each per-destination filtered subscription is billed for every
    # message on the deliveries topic, the filtered-out ones included
    pipeline_bytes = (hits * (max(sizes["raw_hit"], mb) + sizes["raw_hit"])
                      + deliveries * sizes["delivery_task"] * (1 + d))
    records = hits * sizes["raw_hit"] + m * sizes["event_row"] + deliveries * sizes["outcome_row"]
    lines["Pub/Sub: raw-hits + deliveries (publish + delivery)"] = pipeline_bytes / tib * _p("pubsub_tib")
    lines["Pub/Sub: records-* publish"] = records / tib * _p("pubsub_tib")
    lines["Pub/Sub: BigQuery subscriptions (rows into BigQuery)"] = records / tib * _p("pubsub_bq_tib")
    lines["Firestore: dedup + outcome markers"] = _firestore_cost(deliveries, ops)
    log_bytes = ticks * (1 + d) * max(1, math.ceil(per_tick / batch)) * _a("schedule_log_bytes_per_batch") * scale
    lines["Cloud Logging (above the 50 GiB free)"] = log_bytes / 2**30 * _p("logging_gib")
    total = sum(lines.values())
    return {"shape": "schedule", "dedup": dedup, "vendor_concurrency": concurrency, "lines": lines,
            "total": total, "log_gib_per_million": log_bytes / 2**30, "firestore_ops_per_delivery": ops,
            "drain_invocations_per_month": ticks * (1 + d), "dominant": _dominant(lines, total)}


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


VARIANTS = {  # key in --json -> (label in the table, how it is computed)
    "tagpipe": "push as deployed before this change: request logs kept, dedup all, separate outcome + delivered markers",
    "tagpipe_request_logs_excluded": "(a) push as deployed: request logs excluded, dedup all",
    "push_conversions": "(a) push, request logs excluded, dedup conversions",
    "schedule": "(b) schedule, dedup conversions, 8 vendor requests in flight ([delivery] vendor_concurrency default)",
    "schedule_sequential_sends": "(b) schedule, dedup conversions, vendor requests one at a time (vendor_concurrency = 1)",
    "schedule_dedup_all": "(b) schedule, dedup all",
    "schedule_outcome_marker_each": "(b) schedule, dedup conversions, an outcome marker for every delivery (as before exact_outcomes)",
}


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
    burst = ((previous.get("pipeline") or {}).get("layouts") or {}).get("threads", {}).get("burst") or {}
    events_per_cpu_s = burst.get("events_per_cpu_second") or _a("events_per_cpu_second")
    sizes = message_sizes()
    out: dict = {"cpu_per_request_s": cpu, "cpu_source": source, "message_bytes": sizes,
                 "events_per_cpu_second": events_per_cpu_s,
                 "events_per_cpu_second_source": "measured" if burst.get("events_per_cpu_second") else "assumed",
                 "variants": VARIANTS, "volumes": {},
                 "prices": {k: {"value": v, "source": s, "date": d} for k, (v, s, d) in PRICES.items()},
                 "assumptions": {k: {"value": v, "meaning": s} for k, (v, s) in ASSUMPTIONS.items()}}
    for volume in _a("monthly_events"):
        v = {
            "tagpipe": model(sizes, cpu, volume, exclude_request_logs=False, markers="separate"),
            "tagpipe_request_logs_excluded": model(sizes, cpu, volume, exclude_request_logs=True),
            "push_conversions": model(sizes, cpu, volume, exclude_request_logs=True, dedup="conversions"),
            "schedule": model_schedule(sizes, cpu, events_per_cpu_s, volume),
            "schedule_sequential_sends": model_schedule(sizes, cpu, events_per_cpu_s, volume, vendor_concurrency=1),
            "schedule_dedup_all": model_schedule(sizes, cpu, events_per_cpu_s, volume, dedup="all"),
            "schedule_outcome_marker_each": model_schedule(sizes, cpu, events_per_cpu_s, volume, markers="merged"),
            "sgtm_cloud_run": sgtm(volume),
        }
        out["volumes"][f"{volume / 1e6:.0f}M"] = v
        log(f"  {volume / 1e6:.0f}M events/month, per million events: "
            + "; ".join(f"{k} ${v[k]['total']:.2f}" for k in VARIANTS)
            + f"; sGTM on Cloud Run ${v['sgtm_cloud_run']['per_million']:.2f}")
        for k in ("tagpipe_request_logs_excluded", "schedule"):
            log(f"    dominant lines, {k}: " + ", ".join(f"{name} ${cost:.2f} ({share:.0%})"
                                                     for name, cost, share in v[k]["dominant"]))
    return out


def table(result: dict) -> list[str]:
    vols = list(result["volumes"])
    cols = [(k, vol) for k in ("tagpipe_request_logs_excluded", "push_conversions", "schedule") for vol in vols]
    short = {"tagpipe_request_logs_excluded": "(a) push", "push_conversions": "(a) push, dedup conv.",
             "schedule": "(b) schedule"}
    lines = [f"Per million events, {ASSUMPTIONS['destinations'][0]} destinations each, CPU per request "
             f"({result['cpu_source']}): " + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in result["cpu_per_request_s"].items())
             + f"; schedule shape: {result['events_per_cpu_second']:,.0f} events per CPU-second "
             f"({result['events_per_cpu_second_source']}); message bytes: " + json.dumps(result["message_bytes"]), "",
             "| line | " + " | ".join(f"{short[k]}, {vol}/month" for k, vol in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    keys = list(result["volumes"][vols[0]]["schedule"]["lines"])
    for name in keys:
        lines.append(f"| {name} | " + " | ".join(f"${result['volumes'][vol][k]['lines'][name]:.3f}" for k, vol in cols) + " |")
    lines.append("| **total per million events** | "
                 + " | ".join(f"**${result['volumes'][vol][k]['total']:.2f}**" for k, vol in cols) + " |")
    lines.append("| Firestore ops per delivery (reads / writes / TTL deletes) | " + " | ".join(
        "{reads:.2f} / {writes:.2f} / {deletes:.2f}".format(**result["volumes"][vol][k]["firestore_ops_per_delivery"])
        for k, vol in cols) + " |")
    lines.append("| dominant lines | " + " | ".join(
        ", ".join(f"{n.split(': ')[-1]} {share:.0%}" for n, _, share in result["volumes"][vol][k]["dominant"])
        for k, vol in cols) + " |")
    lines += ["", "| other totals per million events | " + " | ".join(f"{vol}/month" for vol in vols) + " |",
              "|---|" + "---:|" * len(vols)]
    for k in ("tagpipe", "schedule_sequential_sends", "schedule_dedup_all", "schedule_outcome_marker_each"):
        lines.append(f"| {VARIANTS[k]} | " + " | ".join(f"${result['volumes'][vol][k]['total']:.2f}" for vol in vols) + " |")
    lines.append("| sGTM on Cloud Run (2 always-on instances + CPU beyond them) | "
                 + " | ".join(f"${result['volumes'][vol]['sgtm_cloud_run']['per_million']:.2f}" for vol in vols) + " |")
    lines.append("| Stape (hosted sGTM) | per-container plans by monthly request quota, every incoming request counted, "
                 "script loads included (stape.io helpdesk, 2025-08-06 / 2026-06-05); plan prices not in this "
                 "session's sources: not modelled |" + " |" * (len(vols) - 1))
    lines += ["", "Assumptions (value: meaning):"]
    lines += [f"- {k} = {v['value']}: {v['meaning']}" for k, v in result["assumptions"].items()]
    lines += ["", "Prices (value: source, date):"]
    lines += [f"- {k} = {v['value']:.10g}: {v['source']} ({v['date']})" for k, v in result["prices"].items()]
    return lines
