"""5. What a million events cost on GCP, from list prices, in two shapes, with the CPU figures measured by
the other sections where they ran, and every other input an assumption stated here. Next to sGTM on Cloud
Run and hosted sGTM (Stape).

(a) push, as deployed (terraform/modules/{functions,pubsub}): per hit, collect (public, async) publishes
raw-hits; a push subscription calls transform once per hit; transform publishes one delivery task per
(event, destination) and the raw hit + event rows to records-* topics; a push subscription calls deliver
once per task (functions/deliver/main.py batches the pushes one instance holds at once into one vendor
request, but each push is still one invocation, billed as such); deliver publishes its outcome rows.
(b) schedule: transform and deliver drain pull subscriptions in batches of up to 1,000, one invocation a
minute per stage and per destination (a topic and subscription per destination), triggered by Cloud
Scheduler; collect unchanged.
Rows reach BigQuery through BigQuery subscriptions; outcome and dedup markers live in Firestore
(`firestore_ops`: per delivery an outcome marker, plus a read and a delivered marker for the events in
the [delivery] dedup scope; each created marker is later a TTL delete). The functions' Cloud Run request
logs are excluded from the _Default sink (terraform/modules/monitoring/request_logs.tf, below HTTP 500).

Instance time: Cloud Run bills it rounded up to 100 ms (PRICES run_billing_granularity_s), read here as
100 ms slots, each billed when the instance has a request in flight in it (ASSUMPTIONS billing_slots), for
every invocation shape (collect per hit, the push stages per message, each drain). collect is modelled in
several sizings side by side (COLLECT_SIZINGS: vCPU, memory, concurrency, min instances): an idle min
instance is billed at the idle rate, and at concurrency 1 (the only one Cloud Run allows below 1 vCPU)
a hit's CPU time stretches by 1/vCPU and hits are assumed not to share billed slots (the upper bound).
collect's CPU per hit on GCP is measured with the Pub/Sub client it publishes with there:
`python -m benchmarks.cost --measure-gcp` (the Pub/Sub emulator; section 1 measures the local queue).
`python -m benchmarks.cost --previous out.json` reprices from the figures of a saved `--json` run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

# --------------------------------------------------------------------------- list prices (USD)
# Each: value, where it was read, when. Tier 1 region (e.g. us-central1), request-based billing.
PRICES = {
    "run_vcpu_s": (0.000024, "cloud.google.com/run/pricing: $0.00002400 / vCPU-second beyond free tier, request-based billing, Tier 1", "read 2026-11-25 (stored copy)"),
    "run_gib_s": (0.0000025, "cloud.google.com/run/pricing: $0.00000250 / GiB-second, request-based billing, Tier 1", "read 2026-11-25 (stored copy)"),
    "run_request": (0.40 / 1e6, "cloud.google.com/run/pricing: $0.40 per million requests", "read 2026-11-25 (stored copy)"),
    "run_idle_vcpu_s": (0.000018, "cloud.google.com/run/pricing: $0.00001800 / vCPU-second, instance-based billing (used here as the upper bound for an idle min instance)", "read 2026-11-25 (stored copy)"),
    "run_idle_gib_s": (0.000002, "cloud.google.com/run/pricing: $0.00000200 / GiB-second, instance-based billing (upper bound for idle)", "read 2026-11-25 (stored copy)"),
    "run_billing_granularity_s": (0.1, "cloud.google.com/run/pricing: \"Cloud Run charges you only for the resources you use, rounded up to the nearest 100 millisecond\" (same in the Google Cloud blog \"3 cool Cloud Run features that developers love\", 2019-06: \"allocated CPU and memory, rounded up to the nearest 100 milliseconds\"; ahmetb/cloud-run-faq: \"Cloud Run in 0.1 second\"). The page does not say what is rounded: see ASSUMPTIONS billing_slots", "read 2026-11-25 (stored copy of the page)"),
    "run_idle_min_vcpu_s": (0.0000025, "request-based billing, a min instance while idle: $0.00000250 / vCPU-second, Tier 1. cloud.google.com/run/docs/configuring/min-instances (Billing): with request-based billing an idle min instance is charged at a lower rate, with min instances 0 an idle instance is not charged; the rate is the pricing table's as quoted in ahmetb/cloud-run-faq#142 (2021-06-03) and in 2026 cost write-ups (us-central1 / europe-west1)", "read 2026-11-25; the rate from those copies, the pricing table's own idle row not seen this session"),
    "run_idle_min_gib_s": (0.0000025, "request-based billing, a min instance while idle: $0.00000250 / GiB-second (the active memory rate), Tier 1, as transcribed by 2026 cost write-ups of cloud.google.com/run/pricing", "read 2026-11-25; secondary copies only, not seen on the pricing page this session"),
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
    "memory_gib": (0.5, "512Mi for transform and deliver (terraform default); collect's memory is its sizing's (COLLECT_SIZINGS)"),
    "schedule_stage_vcpu": (0.333, "schedule shape: transform and deliver at 1/3 vCPU, concurrency 1 (terraform's default with stage_trigger = \"schedule\"; gen2's pairing for 512Mi): a drain mostly waits on Pub/Sub and the vendors, and a billed second costs 2.7x less than at 1 vCPU; the drain's CPU stretches by 1/vCPU, its waits do not. Push keeps 1 vCPU (40 pushes at once need it)"),
    "collect_wait_s": (0.015, "collect waits one Pub/Sub publish round trip per hit (assumed 15 ms in-region; not measured on a real project)"),
    "collect_batch_window_s": (0.002, "plus, at concurrency > 1, the publisher's 2 ms batch window (shared/tagpipe/transport/pubsub.py BATCH_MAX_LATENCY); terraform sets TAGPIPE_PUBSUB_BATCH_MS = 0 for collect at concurrency 1, where nothing can join a batch"),
    "billing_slots": (0.1, "our reading of the 100 ms rounding (Google does not say what is rounded): an instance's time is cut into 100 ms slots and every slot with a request in flight is billed. With Poisson arrivals at r per second on one instance, each request busy s seconds, a slot is billed unless no request arrived in the s + 0.1 s up to its end: billed seconds per second = 1 - e^(-r(s + 0.1)), per request that / r (never less than the request's CPU). A request alone bills s + 0.1 s on average (its first slot and the ones it reaches); rounding each busy period up instead would bill it ceil(s / 0.1) x 0.1 s, i.e. 100 ms instead of ~120 ms for a 20 ms hit, so this reading is the higher one by less than the request's own length. Applied to every invocation: collect per hit, transform / deliver per push, each drain"),
    "collect_cpu_pubsub_s": (0.00078, "collect's server CPU per gtag GET hit at 1 vCPU on GCP's bus as deployed at concurrency 1 (TAGPIPE_PUBSUB_BATCH_MS = 0: shared/tagpipe/transport/pubsub.py sends each publish as its own Publish request through the API client, no batching machinery), served by gunicorn + UvicornWorker as gen2 runs it, one request in flight, against the Pub/Sub emulator (plaintext, no auth token: the real client does a little more): 0.72-0.73 and 0.83-1.06 ms in two runs of 3 x 5 s (2026-12-05), median 0.78; the batching client, which the 2 ms window still uses, took 1.18-1.35 and 1.42-1.91 ms in the same runs (0.45-0.61 ms with 50 in flight, where publishes share batches; 1.18-1.51 ms before session 4); the same server on the local SQLite queue: 0.29-0.30 ms (0.13-0.15 ms with 50 in flight). `python -m benchmarks.cost --measure-gcp`. The model takes the larger of this and section 1's local-queue figure, for every sizing"),
    "collect_cold_start_cpu_s": (0.56, "CPU of a collect cold start at 1 vCPU: a fresh interpreter, import + runtime + the first gtag hit published through the Pub/Sub client to the emulator: 0.54-0.61 s (2026-11-25), 0.55-0.73 s with the direct publish (2026-12-05, median 0.56; the measuring child no longer imports httpx for the benchmark's own use) (0.35-0.38 s on the local queue; section 4: import alone ~0.23 s). `python -m benchmarks.cost --measure-gcp`, 2026-11-25. Below 1 vCPU it stretches by 1/vCPU (no startup CPU boost assumed); the emulator has no TLS or token fetch, so a real cold start takes longer"),
    "collect_memory_mib": ({"one_process_peak_rss": 92, "server_rss_sum": 144, "server_pss_sum": 99},
                           "collect on the Pub/Sub client after 2,000+ hits: peak RSS of one interpreter (the ASGI app in-process: 92 MiB, 76 on the local queue); the gunicorn master + UvicornWorker as gen2 runs it: RSS summed over both processes 142-144 MiB and PSS summed 95-99 MiB (shared pages counted once: the closer figure to what the container's memory limit counts). `python -m benchmarks.cost --measure-gcp`, 2026-11-25. 256Mi holds it with > 100 MiB to spare; 128Mi (the gen2 pairing for 0.083 vCPU) would be ~77 % full by PSS and over by summed RSS: not viable"),
    "fractional_cpu": (True, "below 1 vCPU a hit's CPU time stretches by 1/vCPU (the instance gets that share of a core; a short burst may run faster when the quota allows, so this is the slow end); the Pub/Sub wait does not stretch"),
    "autoscaler_concurrency_target": (0.6, "Cloud Run's autoscaler keeps each instance's request concurrency at about 60 % of its maximum over a one-minute window (cloud.google.com/run/docs/about-instance-autoscaling, read 2026-11-25). The 'autoscaled' estimate for concurrency 1 takes that many instances (mean requests in flight / 0.6, at least 1) and spreads the hits evenly over them, each billed as one instance with its share of the arrivals; how Cloud Run routes among them is not documented"),
    "concurrency1_routing": ("no shared slots", "with concurrency 1 each hit goes to an instance with no request in flight; which one is not documented, so the model assumes no two hits share a billed slot: each bills s + 0.1 s, as if alone on its instance (the upper bound). The lower bound, consecutive hits on the same warm instance sharing slots as on one instance with concurrency 80, is printed beside it (collect sizing table). Cold starts at scale-out are billed too but rare at steady traffic (idle instances are kept warm unbilled): not counted"),
    "min_instance_idle": ("idle rate when not serving", "a min instance is billed at the idle rate (PRICES run_idle_min_*) whenever it has no request in flight, at the active rate when it has: with concurrency 80 (one instance serves every hit) idle for the e^(-r(s + 0.1)) share of slots the model bills no request in; with concurrency 1 idle all month (the upper bound: which instance serves a hit is not known), i.e. its whole idle price"),
    "collect_sizing": ("0.167cpu_256mi_c1_min0", "the collect sizing of every variant not named after another one: the terraform default since this change (COLLECT_SIZINGS)"),
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


# collect sizings modelled side by side (terraform variables.tf functions.collect). Below 1 vCPU Cloud Run
# requires concurrency 1 and request-based billing (cloud.google.com/run/docs/configuring/services/cpu,
# read 2026-11-25); gen2's default vCPU for a memory size: 128 MiB 0.083, 256 MiB 0.167, 512 MiB 0.333
# (cloud.google.com/functions/docs/configuring/memory, read 2026-11-25); 0.08-0.5 vCPU takes up to 512 MiB.
# Not modelled: 0.083 vCPU / 128Mi (collect does not fit, ASSUMPTIONS collect_memory_mib).
COLLECT_SIZINGS = {
    "1cpu_512mi_c80_min1": {"cpu": 1.0, "gib": 0.5, "concurrency": 80, "min_instances": 1,
                            "label": "1 vCPU / 512Mi, concurrency 80, min 1 (the default before this change)"},
    "1cpu_512mi_c80_min0": {"cpu": 1.0, "gib": 0.5, "concurrency": 80, "min_instances": 0,
                            "label": "1 vCPU / 512Mi, concurrency 80, min 0"},
    "0.167cpu_256mi_c1_min1": {"cpu": 0.167, "gib": 0.25, "concurrency": 1, "min_instances": 1,
                               "label": "0.167 vCPU / 256Mi, concurrency 1, min 1"},
    "0.167cpu_256mi_c1_min0": {"cpu": 0.167, "gib": 0.25, "concurrency": 1, "min_instances": 0,
                               "label": "0.167 vCPU / 256Mi, concurrency 1, min 0 (the default now)"},
    "0.083cpu_256mi_c1_min0": {"cpu": 0.083, "gib": 0.25, "concurrency": 1, "min_instances": 0,
                               "label": "0.083 vCPU / 256Mi, concurrency 1, min 0"},
}
MONTH_S = 30 * 86400


def _a(key):
    return ASSUMPTIONS[key][0]


def _p(key):
    return PRICES[key][0]


def message_sizes() -> dict[str, int]:
    """Bytes of the messages the pipeline publishes, measured on the real models."""
    from benchmarks import memory, payloads
    from tagpipe.models import DeliveryTask, OutcomeKind, RawHit
    from tagpipe.pipeline.deliver import Deliverer
    from tagpipe.pipeline.transform import Transformer
    from tagpipe.storage.bigquery import row
    from tagpipe.transport.base import DELIVERIES, RAW_HITS

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
    outcome_bytes = 400  # a delivered outcome's BigQuery row, measured below when transform made a task
    if tasks:
        task = DeliveryTask.model_validate_json(max(tasks, key=lambda m: len(m.data)).data)
        delivered = Deliverer._outcome(task, OutcomeKind.DELIVERED, "ok", "", task.identifiers)
        outcome_bytes = len(json.dumps(row("outcomes", delivered), separators=(",", ":")))  # as BigQueryStore publishes it
    return {"raw_hit": raw_bytes, "delivery_task": task_bytes,
            "event_row": event_doc[0][0] if event_doc else 1500, "outcome_row": outcome_bytes}


def _billable_s(rate: float, busy: float, cpu: float = 0.0) -> float:
    """Billed instance-seconds per request at `rate` requests/s on one instance, each with a request in
    flight for `busy` seconds, billed in 100 ms slots (ASSUMPTIONS billing_slots): a slot is billed when
    a request is in flight in it, i.e. unless no request arrived in the busy + 0.1 s up to its end:
    (1 - e^(-rate*(busy + 0.1))) / rate; busy + 0.1 for a request alone; never less than the CPU the
    request needs."""
    span = busy + _p("run_billing_granularity_s")
    per = (1 - math.exp(-rate * span)) / rate if rate > 0 else span
    return max(per, cpu)


# Firestore document operations per delivery (shared/tagpipe/storage/bigquery.py; counted against the emulator by
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


def collect_cost(cpu_s: float, monthly_events: float, sizing: str | None = None) -> dict:
    """collect per million events, one invocation per hit in every shape (it is the public HTTP endpoint),
    in one of COLLECT_SIZINGS. `cpu_s`: CPU per hit at 1 vCPU. Billed time per hit, with busy = the
    publish wait + cpu_s / vCPU:
    - concurrency > 1: one instance takes every hit (4-40 hits/s use a few % of a vCPU), so hits share
      slots: _billable_s(rate, busy);
    - concurrency 1: no two hits share a slot (ASSUMPTIONS concurrency1_routing): busy + 0.1 s each; the
      shared-slot figure is returned as `lower_bound`, and `autoscaled` spreads the hits over the
      instances the autoscaler keeps at its concurrency target (ASSUMPTIONS autoscaler_concurrency_target).
    Min instances: billed at the idle rate whenever they serve nothing (ASSUMPTIONS min_instance_idle)."""
    sz = COLLECT_SIZINGS[sizing or _a("collect_sizing")]
    per_hit = _a("events_per_hit")
    rate = monthly_events / MONTH_S / per_hit
    g = _p("run_billing_granularity_s")
    window = _a("collect_batch_window_s") if sz["concurrency"] > 1 else 0.0
    busy = _a("collect_wait_s") + window + cpu_s / sz["cpu"]
    price_s = sz["cpu"] * _p("run_vcpu_s") + sz["gib"] * _p("run_gib_s")
    shared = _billable_s(rate, busy, cpu_s / sz["cpu"])
    if sz["concurrency"] > 1:
        billed, idle_share = shared, math.exp(-rate * (busy + g))
    else:
        billed, idle_share = busy + g, 1.0
    instances = max(1, math.ceil(rate * busy / _a("autoscaler_concurrency_target")))
    autoscaled = _billable_s(rate / instances, busy, cpu_s / sz["cpu"]) if sz["concurrency"] == 1 else billed
    hits = 1e6 / per_hit

    def per_million(billed_s: float) -> float:
        return hits * (billed_s * price_s + _p("run_request"))

    idle_price_s = sz["cpu"] * _p("run_idle_min_vcpu_s") + sz["gib"] * _p("run_idle_min_gib_s")
    idle_monthly = sz["min_instances"] * MONTH_S * idle_price_s * idle_share
    return {"sizing": sizing or _a("collect_sizing"), "active": per_million(billed),
            "idle": idle_monthly / (monthly_events / 1e6), "idle_monthly": idle_monthly,
            "idle_monthly_full": sz["min_instances"] * MONTH_S * idle_price_s,
            "lower_bound": per_million(shared) + idle_monthly / (monthly_events / 1e6),
            "autoscaled": per_million(autoscaled) + idle_monthly / (monthly_events / 1e6),
            "autoscaled_instances": instances,
            "billed_s_per_hit": billed, "service_s_per_hit": busy, "cpu_s_per_hit": cpu_s / sz["cpu"],
            "cold_start_s": _a("collect_cold_start_cpu_s") / sz["cpu"]}


def _collect_lines(cpu: dict[str, float], monthly_events: float, sizing: str | None) -> tuple[dict, dict]:
    c = collect_cost(cpu["collect"], monthly_events, sizing)
    return {"Cloud Run functions: collect": c["active"], "Cloud Run functions: collect idle min instances": c["idle"]}, c


def model(sizes: dict[str, int], cpu: dict[str, float], monthly_events: float, exclude_request_logs: bool,
          dedup: str = "all", markers: str = "scope_only", collect: str | None = None) -> dict:
    """(a) The push shape as deployed: one invocation per message, each billed in 100 ms slots on one
    instance per stage (_billable_s)."""
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

    collect_lines, collect_detail = _collect_lines(cpu, monthly_events, collect)
    lines = {
        **collect_lines,
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
            "total": total, "collect": collect_detail, "log_gib_per_million": log_bytes / 2**30, "firestore_ops_per_delivery": ops,
            "invocations_per_million": hits * 2 + deliveries, "dominant": _dominant(lines, total)}


def model_schedule(sizes: dict[str, int], cpu: dict[str, float], events_per_cpu_s: float, monthly_events: float,
                   dedup: str = "conversions", vendor_concurrency: int | None = None, markers: str = "scope_only",
                   collect: str | None = None, stage_vcpu: float | None = None) -> dict:
    """(b) The schedule shape: Cloud Scheduler triggers one drain invocation a minute for transform and one per
    destination for deliver; each pulls batches of up to `schedule_batch` until the subscription is empty.
    Billed instance time = CPU per event (the pipeline bench) + the waits of each pull and vendor request,
    + 0.1 s per drain (a drain alone on its instance, billed in 100 ms slots: ASSUMPTIONS billing_slots)."""
    d, per_hit = _a("destinations"), _a("events_per_hit")
    ticks = 30 * 86400 / _a("schedule_interval_s")
    batch = _a("schedule_batch")
    per_tick = monthly_events / ticks
    m = 1e6
    scale = m / monthly_events  # monthly figures -> per million events
    hits, deliveries = m / per_hit, m * d
    gib = _a("memory_gib")
    vcpu = stage_vcpu or _a("schedule_stage_vcpu")
    rate = vcpu * _p("run_vcpu_s") + gib * _p("run_gib_s")
    cpu_event = 1 / events_per_cpu_s  # transform + deliver (all destinations) per event, at 1 vCPU
    concurrency = vendor_concurrency or _a("vendor_concurrency")
    ops = firestore_ops(dedup, _a("conversion_share"), markers)
    guarded = ops["reads"]

    def invocation(cpu_s: float, pulls: float, extra_wait_s: float) -> float:
        busy = (_a("schedule_overhead_cpu_s") + cpu_s) / vcpu + pulls * _a("schedule_pull_wait_s") + extra_wait_s
        return _billable_s(0.0, busy) * rate + _p("run_request")

    pulls_t = max(1, math.ceil(per_tick / per_hit / batch))
    transform = ticks * invocation(per_tick * cpu_event * _a("transform_cpu_share"), pulls_t, 0.0)
    collect_lines, collect_detail = _collect_lines(cpu, monthly_events, collect)
    lines = {**collect_lines, "Cloud Run functions: transform": transform * scale}
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
    # pull in batches (billed by bytes); each task goes to its destination's own topic, so it is billed
    # once published and once delivered (a filtered subscription on one shared topic would also be
    # billed for every task its filter drops: d + 1 times a task)
    pipeline_bytes = (hits * (max(sizes["raw_hit"], mb) + sizes["raw_hit"])
                      + deliveries * sizes["delivery_task"] * 2)
    records = hits * sizes["raw_hit"] + m * sizes["event_row"] + deliveries * sizes["outcome_row"]
    lines["Pub/Sub: raw-hits + deliveries (publish + delivery)"] = pipeline_bytes / tib * _p("pubsub_tib")
    lines["Pub/Sub: records-* publish"] = records / tib * _p("pubsub_tib")
    lines["Pub/Sub: BigQuery subscriptions (rows into BigQuery)"] = records / tib * _p("pubsub_bq_tib")
    lines["Firestore: dedup + outcome markers"] = _firestore_cost(deliveries, ops)
    log_bytes = ticks * (1 + d) * max(1, math.ceil(per_tick / batch)) * _a("schedule_log_bytes_per_batch") * scale
    lines["Cloud Logging (above the 50 GiB free)"] = log_bytes / 2**30 * _p("logging_gib")
    total = sum(lines.values())
    return {"shape": "schedule", "dedup": dedup, "vendor_concurrency": concurrency, "lines": lines,
            "total": total, "collect": collect_detail, "log_gib_per_million": log_bytes / 2**30, "firestore_ops_per_delivery": ops,
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


OLD_COLLECT = "1cpu_512mi_c80_min1"
VARIANTS = {  # key in --json -> label in the table (how each is computed: _VARIANT_MODELS)
    "tagpipe": "push as deployed before session 2: request logs kept, dedup all, separate outcome + delivered markers, collect 1 vCPU / 512Mi / concurrency 80 / min 1",
    "tagpipe_request_logs_excluded": "(a) push as deployed: request logs excluded, dedup all",
    "push_conversions": "(a) push, request logs excluded, dedup conversions",
    "schedule": "(b) schedule, dedup conversions, 8 vendor requests in flight ([delivery] vendor_concurrency default), collect 0.167 vCPU / 256Mi / concurrency 1 / min 0 (the defaults)",
    "schedule_sequential_sends": "(b) schedule, dedup conversions, vendor requests one at a time (vendor_concurrency = 1)",
    "schedule_dedup_all": "(b) schedule, dedup all",
    "schedule_outcome_marker_each": "(b) schedule, dedup conversions, an outcome marker for every delivery (as before exact_outcomes)",
    "schedule_collect_1cpu_c80_min1": "(b) schedule, dedup conversions, collect 1 vCPU / 512Mi / concurrency 80 / min 1 (the collect default before this change)",
    "schedule_collect_1cpu_c80_min0": "(b) schedule, dedup conversions, collect 1 vCPU / 512Mi / concurrency 80 / min 0",
    "schedule_collect_0167_c1_min1": "(b) schedule, dedup conversions, collect 0.167 vCPU / 256Mi / concurrency 1 / min 1",
    "schedule_collect_0083_c1_min0": "(b) schedule, dedup conversions, collect 0.083 vCPU / 256Mi / concurrency 1 / min 0",
    "schedule_stages_1cpu": "(b) schedule, dedup conversions, transform and deliver at 1 vCPU (their default before session 4)",
}
_VARIANT_MODELS = {  # key -> (shape, keyword arguments)
    "tagpipe": ("push", {"exclude_request_logs": False, "markers": "separate", "collect": OLD_COLLECT}),
    "tagpipe_request_logs_excluded": ("push", {"exclude_request_logs": True}),
    "push_conversions": ("push", {"exclude_request_logs": True, "dedup": "conversions"}),
    "schedule": ("schedule", {}),
    "schedule_sequential_sends": ("schedule", {"vendor_concurrency": 1}),
    "schedule_dedup_all": ("schedule", {"dedup": "all"}),
    "schedule_outcome_marker_each": ("schedule", {"markers": "merged"}),
    "schedule_collect_1cpu_c80_min1": ("schedule", {"collect": OLD_COLLECT}),
    "schedule_collect_1cpu_c80_min0": ("schedule", {"collect": "1cpu_512mi_c80_min0"}),
    "schedule_collect_0167_c1_min1": ("schedule", {"collect": "0.167cpu_256mi_c1_min1"}),
    "schedule_collect_0083_c1_min0": ("schedule", {"collect": "0.083cpu_256mi_c1_min0"}),
    "schedule_stages_1cpu": ("schedule", {"stage_vcpu": 1.0}),
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
    # on GCP collect publishes with the Pub/Sub client, not the local queue section 1 measures: the larger
    local_collect = cpu["collect"]
    cpu["collect"] = max(local_collect, _a("collect_cpu_pubsub_s"))
    burst = ((previous.get("pipeline") or {}).get("layouts") or {}).get("threads", {}).get("burst") or {}
    events_per_cpu_s = burst.get("events_per_cpu_second") or _a("events_per_cpu_second")
    sizes = message_sizes()
    out: dict = {"cpu_per_request_s": cpu, "cpu_source": source, "collect_cpu_local_queue_s": local_collect,
                 "collect_cpu_source": "Pub/Sub client (ASSUMPTIONS collect_cpu_pubsub_s)"
                 if cpu["collect"] > local_collect else f"section 1 ({source})",
                 "message_bytes": sizes, "events_per_cpu_second": events_per_cpu_s,
                 "events_per_cpu_second_source": "measured" if burst.get("events_per_cpu_second") else "assumed",
                 "variants": VARIANTS, "collect_sizings": COLLECT_SIZINGS, "volumes": {},
                 "prices": {k: {"value": v, "source": s, "date": d} for k, (v, s, d) in PRICES.items()},
                 "assumptions": {k: {"value": v, "meaning": s} for k, (v, s) in ASSUMPTIONS.items()}}
    for volume in _a("monthly_events"):
        v: dict = {}
        for key, (shape, kw) in _VARIANT_MODELS.items():
            if shape == "push":
                v[key] = model(sizes, cpu, volume, **kw)
            else:
                v[key] = model_schedule(sizes, cpu, events_per_cpu_s, volume, **kw)
        v["sgtm_cloud_run"] = sgtm(volume)
        v["collect_sizings"] = {k: collect_cost(cpu["collect"], volume, k) for k in COLLECT_SIZINGS}
        out["volumes"][f"{volume / 1e6:.0f}M"] = v
        log(f"  {volume / 1e6:.0f}M events/month, per million events: "
            + "; ".join(f"{k} ${v[k]['total']:.2f}" for k in VARIANTS)
            + f"; sGTM on Cloud Run ${v['sgtm_cloud_run']['per_million']:.2f}")
        for k in ("tagpipe_request_logs_excluded", "schedule"):
            log(f"    dominant lines, {k}: " + ", ".join(f"{name} ${cost:.2f} ({share:.0%})"
                                                     for name, cost, share in v[k]["dominant"]))
    return out


def _money(x: float) -> str:
    return f"${x:.2f}"


def table(result: dict) -> list[str]:
    vols = list(result["volumes"])
    cols = [(k, vol) for k in ("tagpipe_request_logs_excluded", "push_conversions", "schedule") for vol in vols]
    short = {"tagpipe_request_logs_excluded": "(a) push", "push_conversions": "(a) push, dedup conv.",
             "schedule": "(b) schedule"}
    sizing = COLLECT_SIZINGS[ASSUMPTIONS["collect_sizing"][0]]["label"]
    lines = [f"Per million events, {ASSUMPTIONS['destinations'][0]} destinations each, collect {sizing}; CPU per "
             f"request at 1 vCPU ({result['cpu_source']}): " + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in result["cpu_per_request_s"].items())
             + f" (collect: {result['collect_cpu_source']}; the local queue's {result['collect_cpu_local_queue_s'] * 1000:.2f} ms)"
             f"; schedule shape: {result['events_per_cpu_second']:,.0f} events per CPU-second "
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
    # collect sizings side by side
    lines += ["", "| collect sizing | CPU per hit | time per hit (wait + CPU) | billed per hit, " + " / ".join(vols)
              + " | collect per million, " + " / ".join(vols) + " (≈ autoscaled; ≥ lower bound) | min instances idle all month, $/month | "
              + " | ".join(f"(b) schedule total, {vol}" for vol in vols) + " | cold start (est.) |",
              "|---|---:|---:|---:|---:|---:|" + "---:|" * len(vols) + "---:|"]
    totals = {key: kw.get("collect", ASSUMPTIONS["collect_sizing"][0]) for key, (shape, kw) in _VARIANT_MODELS.items()
              if shape == "schedule" and set(kw) <= {"collect"}}
    by_sizing = {sz: key for key, sz in totals.items()}
    for sz, spec in COLLECT_SIZINGS.items():
        cs = [result["volumes"][vol]["collect_sizings"][sz] for vol in vols]
        shared = spec["concurrency"] == 1
        lines.append(
            f"| {spec['label']} | {cs[0]['cpu_s_per_hit'] * 1000:.1f} ms | {cs[0]['service_s_per_hit'] * 1000:.0f} ms | "
            + " / ".join(f"{c['billed_s_per_hit'] * 1000:.0f} ms" for c in cs) + " | "
            + " / ".join(_money(c["active"] + c["idle"])
                         + (f" (≈ {_money(c['autoscaled'])}; ≥ {_money(c['lower_bound'])})" if shared else "") for c in cs)
            + f" | {_money(cs[0]['idle_monthly_full']) if spec['min_instances'] else 'none'}" + " | "
            + " | ".join(_money(result["volumes"][vol][by_sizing[sz]]["total"]) if sz in by_sizing else "" for vol in vols)
            + f" | {cs[0]['cold_start_s']:.1f} s |")
    lines += ["", "| other totals per million events | " + " | ".join(f"{vol}/month" for vol in vols) + " |",
              "|---|" + "---:|" * len(vols)]
    for k in ("tagpipe", "schedule_sequential_sends", "schedule_dedup_all", "schedule_outcome_marker_each",
              "schedule_stages_1cpu"):
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


# --------------------------------------------------------------------------- measuring collect on GCP's bus
_GCP_CONFIG = """[storage]
dir = "{data}"

[server]
rate_limit_per_ip = 0

[destinations.meta]
type = "meta"
pixel_id = "123456789012345"
access_token_env = "BENCH_META_TOKEN"

[destinations.ga4]
type = "ga4"
measurement_id = "G-ABCDEF1234"
api_secret_env = "BENCH_GA4_SECRET"
"""


def _tree_memory_mib(pids: list[int]) -> dict[str, float]:
    """RSS and PSS summed over a process tree (PSS counts a page shared by n processes 1/n in each)."""
    rss = pss = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss += int(line.split()[1])
    return {"rss_sum": round(rss / 1024, 1), "pss_sum": round(pss / 1024, 1)}


def _cold_start_child() -> None:
    """In a fresh interpreter (env from the parent): import + runtime + the first gtag hit, then 2,000 more."""
    import asyncio
    import resource

    c0, t0 = time.process_time(), time.perf_counter()
    from functions_framework.aio import create_asgi_app

    from benchmarks import payloads
    from benchmarks.asgi import _loop

    app = create_asgi_app("collect", str(Path(__file__).resolve().parents[1] / "functions" / "collect" / "main.py"), "http")
    asyncio.run(_loop(app, payloads.gtag_get(), 1))
    first = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
    c1 = time.process_time()
    asyncio.run(_loop(app, payloads.gtag_get(), 2000))
    print("RESULT " + json.dumps({"first_answer": first, "cpu_per_hit_in_process_s": (time.process_time() - c1) / 2000,
                                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure_gcp(seconds: float = 5.0, rounds: int = 3, log=print) -> dict:
    """collect's CPU per hit, memory and cold start on GCP's bus (PubSubBus, google-cloud-pubsub) against the
    Pub/Sub emulator (started as benchmarks/drain.py and tests/gcp/conftest.py start it), next to the local
    queue, on the server gen2 runs (benchmarks._serve gcf-asgi: gunicorn + UvicornWorker), 1 and 50
    requests in flight (wrk closed loop). The emulator's CPU is not counted (another process); it speaks
    plaintext gRPC with no auth token, so the real client's CPU per publish is a little higher."""
    import subprocess

    from benchmarks import payloads
    from benchmarks._util import PY, ROOT, Proc, cpu_seconds, free_port, run_load, start_pubsub_emulator

    out: dict = {"seconds": seconds, "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="tagpipe-bench-cost-gcp-") as tmp:
        tmp = Path(tmp)
        emulator = start_pubsub_emulator(tmp)
        try:
            project = f"bench-cost-{int(time.time())}"
            saved = os.environ.get("PUBSUB_EMULATOR_HOST")
            os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
            try:
                from tagpipe.transport.pubsub import PubSubBus

                bus = PubSubBus(project, "tagpipe")
                bus.ensure_topology(destinations=("meta", "ga4"))
                bus.close()
            finally:
                if saved is None:
                    os.environ.pop("PUBSUB_EMULATOR_HOST", None)
                else:
                    os.environ["PUBSUB_EMULATOR_HOST"] = saved
            config = tmp / "tagpipe.toml"
            config.write_text(_GCP_CONFIG.format(data=tmp / "data"))
            shape = payloads.gtag_get()
            # pubsub: as terraform deploys collect at concurrency 1 (no batch window: straight Publish
            # requests); pubsub_batched: with the 2 ms window it gets at concurrency > 1
            for transport, window in (("local", None), ("pubsub", "0"), ("pubsub_batched", "2")):
                env = {"TAGPIPE_CONFIG": str(config), "BENCH_META_TOKEN": "bench", "BENCH_GA4_SECRET": "bench",
                       "TAGPIPE_LOG_LEVEL": "WARNING", "FUNCTION_USE_ASGI": "true"}
                if window is not None:  # as terraform/modules/functions sets it, the emulator for Pub/Sub
                    env |= {"TAGPIPE_TRANSPORT": "pubsub", "TAGPIPE_STORE": "bigquery", "TAGPIPE_GCP_PROJECT": project,
                            "TAGPIPE_TOPIC_PREFIX": "tagpipe", "PUBSUB_EMULATOR_HOST": emulator.host,
                            "TAGPIPE_PUBSUB_BATCH_MS": window}
                row: dict = {}
                sport = free_port()
                with Proc([PY, "-m", "benchmarks._serve", "gcf-asgi", "collect",
                           str(ROOT / "functions" / "collect" / "main.py"), str(sport)], env) as proc:
                    proc.start(sport, health="/healthz")
                    pids = proc.pids()
                    run_load(sport, shape, 2, connections=1)  # warm: runtime, caches, the publisher's channel
                    for conns in (1, 50):
                        runs = []
                        for _ in range(rounds):
                            before = cpu_seconds(pids)
                            load = run_load(sport, shape, seconds, connections=conns)
                            if load.errors:
                                raise RuntimeError(f"collect on {transport}: {load.errors} errors")
                            runs.append({"cpu_per_hit_s": (cpu_seconds(pids) - before) / load.requests,
                                         "rps": load.rps, "p50_ms": load.p50_ms, "p99_ms": load.p99_ms})
                        row[f"in_flight_{conns}"] = runs
                    row["server_memory_mib"] = _tree_memory_mib(pids)
                cold = []
                for _ in range(rounds):
                    child = subprocess.run([PY, "-c", "from benchmarks.cost import _cold_start_child; _cold_start_child()"],
                                           cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
                    line = next((x for x in child.stdout.splitlines() if x.startswith("RESULT ")), None)
                    if line is None:
                        raise RuntimeError(f"cold start child failed: {child.stderr[-2000:]}")
                    cold.append(json.loads(line[len("RESULT "):]))
                row["fresh_interpreter"] = cold
                out[transport] = row
                log(f"  {transport}: CPU per hit, 1 in flight "
                    + ", ".join(f"{r['cpu_per_hit_s'] * 1000:.2f}" for r in row["in_flight_1"])
                    + " ms; 50 in flight " + ", ".join(f"{r['cpu_per_hit_s'] * 1000:.2f}" for r in row["in_flight_50"])
                    + f" ms; p50 at 1 in flight {row['in_flight_1'][0]['p50_ms']:.1f} ms; server memory "
                    + json.dumps(row["server_memory_mib"]) + " MiB; fresh interpreter: first answer CPU "
                    + ", ".join(f"{c['first_answer']['cpu_s']:.2f}" for c in cold) + " s, peak RSS "
                    + ", ".join(f"{c['peak_rss_mib']:.0f}" for c in cold) + " MiB")
        finally:
            emulator.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cost", description=__doc__.splitlines()[0])
    ap.add_argument("--measure-gcp", action="store_true",
                    help="measure collect's CPU per hit, memory and cold start on the Pub/Sub client (emulator)")
    ap.add_argument("--previous", help="reprice from a saved `python -m benchmarks --json` file's measured figures")
    ap.add_argument("--json", help="also write the result as JSON to this file")
    args = ap.parse_args(argv)
    if args.measure_gcp:
        result = measure_gcp()
    else:
        previous = json.loads(Path(args.previous).read_text()) if args.previous else {}
        result = run(previous)
        print("", *table(result), sep="\n")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
