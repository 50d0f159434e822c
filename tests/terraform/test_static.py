"""Static checks of terraform/: it parses, it has what the pipeline needs, and nothing it must not.

No Google provider can be downloaded here, so no init/validate/plan: these tests read the HCL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tagpipe.transport.base import DEAD_LETTER, DELIVERIES, RAW_HITS, TOPOLOGY, destination_topic
from tests.terraform.hcl import ROOT, TF, block, modules, parse, tf_files
from tests.tools import missing

TABLES = json.loads((ROOT / "shared" / "tagpipe" / "storage" / "bigquery_schemas" / "tables.json").read_text())

# Resource types that take labels (user_labels for Monitoring), and those that cannot.
LABELED = {
    "google_bigquery_dataset": "labels",
    "google_bigquery_table": "labels",
    "google_cloudfunctions2_function": "labels",
    "google_cloud_run_v2_service": "labels",
    "google_compute_global_address": "labels",
    "google_compute_global_forwarding_rule": "labels",
    "google_monitoring_alert_policy": "user_labels",
    "google_monitoring_notification_channel": "user_labels",
    "google_pubsub_subscription": "labels",
    "google_pubsub_topic": "labels",
    "google_secret_manager_secret": "labels",
    "google_storage_bucket": "labels",
}
UNLABELABLE = {
    "google_bigquery_dataset_iam_member", "google_cloud_run_v2_service_iam_member", "google_cloud_scheduler_job",
    "google_compute_backend_service", "google_compute_managed_ssl_certificate",
    "google_compute_region_network_endpoint_group", "google_compute_ssl_policy",
    "google_compute_target_http_proxy", "google_compute_target_https_proxy", "google_compute_url_map",
    "google_firestore_database", "google_firestore_field", "google_logging_metric", "google_logging_project_exclusion",
    "google_project_iam_member", "google_project_service", "google_pubsub_subscription_iam_member",
    "google_pubsub_topic_iam_member", "google_secret_manager_secret_iam_member", "google_service_account",
    "google_service_account_iam_member", "google_storage_bucket_object",
}


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(TF)))
def test_every_file_parses(path):
    assert isinstance(parse(path), dict)


def test_layout():
    assert {"root", "pubsub", "functions", "bigquery", "firestore", "secrets", "monitoring", "loadbalancer"} <= set(modules())
    for name, mod in modules().items():
        for f in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            if name == "root" or f != "variables.tf" or mod.variables:
                assert (mod.path / f).exists(), f"{mod.path}/{f}"
    assert (TF / "terraform.tfvars.example").exists()


def test_versions_are_pinned_everywhere():
    for name, mod in modules().items():
        (tf,) = mod.terraform
        assert re.match(r">= ?1\.\d+", tf["required_version"]), name
        google = tf["required_providers"][0]["google"]
        assert google["source"] == "hashicorp/google" and re.match(r"~> ?\d+\.\d+", google["version"]), name


def test_every_variable_is_typed_and_described():
    for name, mod in modules().items():
        for var, body in mod.variables.items():
            assert body.get("type"), f"{name}: variable {var} has no type"
            assert len(body.get("description", "")) > 10, f"{name}: variable {var} has no description"


def test_object_variables_use_optional_attributes():
    for var, body in modules()["root"].variables.items():
        if body["type"].startswith("${object("):
            assert "optional(" in body["type"], var
            assert "default" in body, f"{var}: objects of optional attributes should default to {{}}"


def test_labels_on_every_resource_that_takes_them():
    for name, mod in modules().items():
        for (kind, rname), body in mod.resources.items():
            assert kind in LABELED or kind in UNLABELABLE, f"{kind}: decide whether it takes labels"
            if kind in LABELED:
                assert LABELED[kind] in body, f"{name}: {kind}.{rname} has no {LABELED[kind]}"
    # and the provider adds them to anything else that takes them
    assert modules()["root"].providers["google"]["default_labels"] == "${local.labels}"


# --------------------------------------------------------------------------- Pub/Sub


def dead_letter_policies(body: dict) -> list[dict]:
    """Plain and dynamic dead_letter_policy blocks of a subscription."""
    plain = body.get("dead_letter_policy", [])
    dynamic = [d["dead_letter_policy"]["content"][0] for d in body.get("dynamic", []) if "dead_letter_policy" in d]
    return list(plain) + dynamic


def test_topics_mirror_the_python_topology():
    pubsub = modules()["pubsub"]
    assert pubsub.locals["pipeline_topics"] == f'${{concat(["{RAW_HITS}", "{DEAD_LETTER}"], local.delivery_topics)}}'
    # one deliveries topic per destination, named as Python names it (tests/terraform/test_trigger_modes.py
    # renders the values)
    assert destination_topic("${d}") in pubsub.locals["delivery_topics"]
    # transform, deliver-<id> (per_destination's names, on the destination's topic) and dead-letter-archive
    stages = pubsub.locals["stages"]
    assert '{transform = {topic = "raw-hits", stage = "transform"}}' in stages
    assert TOPOLOGY["transform"].topic == RAW_HITS and TOPOLOGY["deliver"].topic == DELIVERIES
    assert '"deliver-${d}" => {topic = "deliveries-${d}", stage = "deliver"}' in stages
    assert TOPOLOGY["dead-letter-archive"].topic == DEAD_LETTER
    assert 'topic = "dead-letter", stage = s' in pubsub.locals["archive"]
    # every stage is fed in both trigger modes; the archive function is optional
    root = modules()["root"].modules["pubsub"]["push_endpoints"]
    assert 'transform = module.functions.urls["transform"]' in root and "enable_archive_function" in root


def test_every_topic_has_a_subscription():
    pubsub = modules()["pubsub"]
    subs = pubsub.of_type("google_pubsub_subscription")
    assert "${local.feeds}" == subs["stage"]["for_each"]  # raw-hits, deliveries-<id> (and dead-letter)
    assert subs["stage"]["topic"] == "${google_pubsub_topic.this[each.value.topic].id}"
    assert subs["records"]["for_each"] == "${var.record_tables}"
    assert subs["records"]["topic"] == "${google_pubsub_topic.this[each.key].id}"
    # every records topic in tables.json is in the record_tables the root passes
    record_topics = {spec["topic"] for spec in TABLES.values() if spec["topic"]}
    assert record_topics == {f"records-{t.replace('_', '-')}" for t, s in TABLES.items() if s["topic"]}
    bq_out = modules()["bigquery"].outputs["record_tables"]["value"]
    assert "spec.topic != null" in bq_out or "if spec.topic != null" in bq_out
    # the pipeline topics, rendered, each with its subscription: test_trigger_modes.py


def test_every_dead_letter_topic_has_a_subscription():
    pubsub = modules()["pubsub"]
    subs = pubsub.of_type("google_pubsub_subscription")
    dead_letter_topics = {p["dead_letter_topic"] for body in subs.values() for p in dead_letter_policies(body)}
    assert dead_letter_topics == {'${google_pubsub_topic.this["dead-letter"].id}'}
    archive = subs["dead_letter_archive"]
    assert archive["topic"] == '${google_pubsub_topic.this["dead-letter"].id}'
    config = block(archive, "bigquery_config")
    assert config["write_metadata"] is True and config["use_table_schema"] is False
    assert config["table"] == "${var.dead_letter_table}"


def test_push_subscriptions_use_oidc_retry_and_dead_letter_policies():
    push = modules()["pubsub"].resource("google_pubsub_subscription", "stage")
    dynamic_push = next(d["push_config"] for d in push["dynamic"] if "push_config" in d)
    assert dynamic_push["for_each"] == (
        "${contains(keys(local.push), each.key) ? [var.push_endpoints[each.value.stage]] : []}")
    config = dynamic_push["content"][0]
    assert config["push_endpoint"] == "${push_config.value}"
    oidc = block(config, "oidc_token")
    assert oidc["service_account_email"] == "${var.invoker_service_account}"
    assert oidc["audience"] == "${push_config.value}"
    assert block(push, "retry_policy")["maximum_backoff"] == "${var.delivery.max_backoff_seconds}s"
    (policy,) = dead_letter_policies(push)
    assert policy["max_delivery_attempts"] == "${var.delivery.max_delivery_attempts}"
    # every push subscription dead-letters, except the one on the dead-letter topic itself
    dynamic = next(d["dead_letter_policy"] for d in push["dynamic"] if "dead_letter_policy" in d)
    assert dynamic["for_each"] == '${each.value.topic == "dead-letter" ? [] : [1]}'
    assert block(push, "expiration_policy")["ttl"] == ""
    # only the invoker account may call transform and deliver, and it may call nothing else
    fns = modules()["functions"]
    invoker = fns.resource("google_cloud_run_v2_service_iam_member", "push_invoker")
    assert invoker["member"] == "serviceAccount:${google_service_account.invoker.email}"
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["for_each"] == "${local.private}"
    assert fns.locals["private"] == '${toset([for f in local.functions : f if f != "collect"])}'


def test_dead_letter_iam_for_the_pubsub_service_agent():
    pubsub = modules()["pubsub"]
    pub = pubsub.resource("google_pubsub_topic_iam_member", "dead_letter_publisher")
    assert pub["role"] == "roles/pubsub.publisher"
    assert pub["topic"] == '${google_pubsub_topic.this["dead-letter"].name}'
    assert pub["member"] == "serviceAccount:${var.pubsub_service_agent}"
    sub = pubsub.resource("google_pubsub_subscription_iam_member", "dead_letter_subscriber")
    assert sub["role"] == "roles/pubsub.subscriber" and sub["member"] == "serviceAccount:${var.pubsub_service_agent}"
    assert sub["for_each"] == "${toset(local.dead_lettering)}"
    # every subscription with a dead-letter policy is in local.dead_lettering
    lettering = pubsub.locals["dead_lettering"]
    assert 'for s, f in local.feeds : "${var.prefix}-${s}" if f.topic != "dead-letter"' in lettering
    assert 'for t in keys(var.record_tables) : "${var.prefix}-${t}-to-bigquery"' in lettering
    assert pubsub.resource("google_pubsub_subscription", "records")["name"] == "${var.prefix}-${each.key}-to-bigquery"
    # the service agent writes BigQuery subscriptions and mints push tokens
    bq = modules()["bigquery"].resource("google_bigquery_dataset_iam_member", "pubsub_writer")
    assert bq["role"] == "roles/bigquery.dataEditor"
    token = pubsub.resource("google_service_account_iam_member", "push_token_creator")
    assert token["role"] == "roles/iam.serviceAccountTokenCreator"
    assert "gcp-sa-pubsub.iam.gserviceaccount.com" in modules()["root"].locals["pubsub_service_agent"]


# --------------------------------------------------------------------------- functions


def test_collect_is_public_and_the_others_are_not():
    fns = modules()["functions"]
    public = fns.resource("google_cloud_run_v2_service_iam_member", "public")
    assert public["member"] == "allUsers"
    assert public["name"] == '${google_cloudfunctions2_function.fn["collect"].name}'
    for name, mod in modules().items():
        for (kind, rname), body in mod.resources.items():
            text = json.dumps(body)
            if "allUsers" in text or "allAuthenticatedUsers" in text:
                assert (name, kind, rname) == ("functions", "google_cloud_run_v2_service_iam_member", "public")
    service = block(fns.resource("google_cloudfunctions2_function", "fn"), "service_config")
    assert service["ingress_settings"] == '${each.key == "collect" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"}'


def test_one_service_account_per_function_with_scoped_roles():
    fns = modules()["functions"]
    assert fns.locals["functions"] == (
        '${toset(concat(["collect", "transform", "deliver"], var.archive ? ["archive"] : []))}')
    assert fns.resource("google_service_account", "fn")["for_each"] == "${local.functions}"
    service = block(fns.resource("google_cloudfunctions2_function", "fn"), "service_config")
    assert service["service_account_email"] == "${google_service_account.fn[each.key].email}"
    publishes = fns.locals["publishes"]
    assert RAW_HITS in publishes["collect"] and DELIVERIES not in publishes["collect"]
    assert DELIVERIES in publishes["transform"] and DEAD_LETTER in publishes["deliver"]
    # no project-wide publisher/editor roles anywhere
    for name, mod in modules().items():
        for (kind, _), body in mod.resources.items():
            if kind == "google_project_iam_member" and name == "dashboard":
                assert body["role"] == "roles/bigquery.jobUser"  # runs query jobs; reads only what the dataset grants
            elif kind == "google_project_iam_member":
                assert body["role"] == "roles/datastore.user" and "condition" in body
            assert body.get("role") not in ("roles/editor", "roles/owner", "roles/pubsub.admin")


def test_sizing_defaults():
    functions_type = modules()["root"].variables["functions"]["type"]
    collect = re.search(r"collect = optional\(object\(\{(.*?)\}\)", functions_type).group(1)
    # collect: 1/6 vCPU / 256Mi, one hit per instance, scales to zero: the cheapest sizing that holds it
    # (benchmarks/cost.py COLLECT_SIZINGS, docs/benchmarks.md section 5). Below 1 vCPU Cloud Run
    # requires concurrency 1, which the functions module's validation enforces.
    for setting in ('memory = optional(string, "256Mi")', 'cpu = optional(string, "0.167")',
                    "concurrency = optional(number, 1)", "min_instances = optional(number, 0)",
                    "max_instances = optional(number, 1000)"):  # ~40 hits/s each: peaks are never refused
        assert setting in collect, setting
    for name in ("transform", "deliver"):
        part = re.search(name + r" = optional\(object\(\{(.*?)\}\)", functions_type).group(1)
        assert "min_instances = optional(number, 0)" in part, name


def test_environment_contract():
    env = modules()["functions"].locals["env"]
    for key, value in {
        "TAGPIPE_TRANSPORT": "pubsub", "TAGPIPE_STORE": "bigquery", "TAGPIPE_GCP_PROJECT": "${var.project_id}",
        "TAGPIPE_TOPIC_PREFIX": "${var.prefix}", "TAGPIPE_BQ_DATASET": "${var.dataset_id}",
        "TAGPIPE_CONFIG": "/workspace/tagpipe.toml", "FUNCTION_USE_ASGI": "true",
        "TAGPIPE_FIRESTORE_DATABASE": "${var.firestore_database}",
    }.items():
        assert env[key] == value, key
    secrets = modules()["root"].variables["secrets"]["default"]
    assert set(secrets) == {
        "META_ACCESS_TOKEN", "GA4_API_SECRET", "GOOGLE_ADS_DEVELOPER_TOKEN", "GOOGLE_ADS_CLIENT_ID",
        "GOOGLE_ADS_CLIENT_SECRET", "GOOGLE_ADS_REFRESH_TOKEN", "TIKTOK_ACCESS_TOKEN", "TAGPIPE_WEBHOOK_SECRET",
        "SLACK_WEBHOOK_URL", "SMTP_PASSWORD",
    }
    service = block(modules()["functions"].resource("google_cloudfunctions2_function", "fn"), "service_config")
    assert "secret_environment_variables" in json.dumps(service)


def test_secrets_are_containers_only():
    for mod in modules().values():
        for (kind, _), body in mod.resources.items():
            assert kind != "google_secret_manager_secret_version", "secret values must never pass through Terraform"
            assert "secret_data" not in body
    token = modules()["root"].variables["slack_auth_token"]
    assert token["sensitive"] is True and token["default"] is None
    assert modules()["monitoring"].variables["slack_auth_token"]["sensitive"] is True


SECRET_PATTERNS = [
    re.compile(r"xox[abpr]-[0-9A-Za-z-]{10,}"),  # Slack
    re.compile(r"EAA[A-Za-z0-9]{30,}"),  # Meta access token
    re.compile(r"AIza[0-9A-Za-z_-]{35}"),  # Google API key
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)(token|secret|password|api_key)\s*=\s*\"[^\"$]{8,}\""),
    re.compile(r"hooks\.slack\.com/services/[A-Z0-9]+/"),
]


def test_no_secret_literal_in_the_tree():
    files = list(tf_files()) + [TF / "terraform.tfvars.example"]
    for path in files:
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{path}: looks like a secret ({pattern.pattern})"


# --------------------------------------------------------------------------- BigQuery, Firestore


def test_tables_come_from_the_shared_schemas_with_partition_expiry():
    bq = modules()["bigquery"]
    tables = bq.resource("google_bigquery_table", "tables")
    assert tables["for_each"] == "${local.tables}"
    assert tables["schema"] == '${file("${local.schemas_dir}/tables/${each.key}.json")}'
    assert (ROOT / "shared" / "tagpipe" / "storage" / "bigquery_schemas" / "tables.json").exists()
    partition = block(tables, "time_partitioning")
    assert partition["type"] == "DAY" and partition["field"] == "${each.value.partition_field}"
    assert "local.retention_days" in partition["expiration_ms"]
    assert set(bq.locals["default_retention_days"]) == set(TABLES)
    for view in list(bq.locals["views"]) + ["delivery_rates"]:
        assert (TF / "modules" / "bigquery" / "views" / f"{view}.sql").exists()


def test_firestore_keys_expire():
    fs = modules()["firestore"]
    field = fs.resource("google_firestore_field", "expire_at")
    assert "ttl_config" in field and field["field"] == "expire_at"
    from tagpipe.storage.bigquery import DELIVERED, OUTCOMES

    assert set(fs.locals["collections"]) == {DELIVERED, OUTCOMES}


# --------------------------------------------------------------------------- monitoring, LB


def test_alert_policies_cover_the_failure_modes():
    """The sources each policy reads (the rule-by-rule checks are in test_monitoring.py)."""
    mon = modules()["monitoring"]
    entries = mon.locals["alert_policies"]
    assert len(entries) >= 11
    kinds = {k for body in entries.values() for k in ("promql", "log_match", "threshold", "absent") if body.get(k)}
    assert kinds == {"promql", "log_match", "threshold", "absent"}
    read = {name: json.dumps(body) for name, body in entries.items()}
    assert "${local.outcomes}" in read["delivery_error_rate"] and "sum by (destination)" in read["delivery_error_rate"]
    assert 'outcome=~\\"rejected|dead_lettered\\"' in read["delivery_error_rate"]
    assert "${local.outcomes}" in mon.locals["mk_dlv_now"] and "${local.match_keys}" in mon.locals["mk_keys_now"]
    assert mon.locals["outcomes"] == "logging_googleapis_com:user_${local.metric_name}_sum"
    assert mon.locals["match_keys"] == "logging_googleapis_com:user_${local.key_metric_name}_sum"
    assert "subscription/dead_letter_message_count" in read["dead_lettered"]
    assert "subscription/num_undelivered_messages" in read["dead_letter_backlog"]
    assert "subscription/oldest_unacked_message_age" in read["oldest_unacked"]
    assert "5xx" in entries["collect_5xx"]["threshold"]["filter"] and entries["collect_5xx"]["threshold"]["denominator_filter"]
    assert "4xx" in mon.locals["collect_4xx"] and "offset 1w" in mon.locals["traffic_before"]
    metric = mon.resource("google_logging_metric", "outcomes")
    assert metric["label_extractors"]["outcome"] == "EXTRACT(jsonPayload.outcome)"
    assert metric["value_extractor"] == "EXTRACT(jsonPayload.count)"
    channels = mon.of_type("google_monitoring_notification_channel")
    assert channels["email"]["type"] == "email" and channels["slack"]["type"] == "slack"
    call = mon.modules["alert_policies"]
    assert call["policies"] == "${local.alert_policies}" and call["notification_channels"] == "${local.channels}"


def test_custom_domain_load_balancer_is_optional():
    root = modules()["root"]
    lb = root.modules["loadbalancer"]
    assert lb["count"] == "${var.enable_custom_domain ? 1 : 0}"
    assert root.variables["enable_custom_domain"]["default"] is False
    mod = modules()["loadbalancer"]
    neg = mod.resource("google_compute_region_network_endpoint_group", "collect")
    assert neg["network_endpoint_type"] == "SERVERLESS"
    assert mod.resource("google_compute_backend_service", "collect")["load_balancing_scheme"] == "EXTERNAL_MANAGED"
    assert "managed" in mod.resource("google_compute_managed_ssl_certificate", "collect")
    assert mod.resource("google_compute_ssl_policy", "modern")["min_tls_version"] == "TLS_1_2"


# --------------------------------------------------------------------------- tools


def _checkov() -> str | None:
    for candidate in (os.environ.get("CHECKOV_BIN"), str(ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"),
                      shutil.which("checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def test_checkov_skips_are_justified():
    for path in tf_files():
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                assert re.search(r"#checkov:skip=CKV2?_[A-Z]+_\d+:.{20,}", line), f"{path}: unjustified skip: {line}"


def test_checkov_passes():
    checkov = _checkov()
    if checkov is None:
        missing("checkov", "checkov not installed: scripts/tools.sh puts it in .venv/tools/checkov (or set CHECKOV_BIN)")
    result = subprocess.run(
        [checkov, "-d", str(TF), "--framework", "terraform", "--compact", "--quiet", "--skip-download"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout or "Passed checks" in result.stdout


def test_terraform_fmt():
    terraform = shutil.which("terraform")
    if terraform is None:
        missing("terraform", "terraform not installed: `terraform fmt -check` not run")
    result = subprocess.run([terraform, "fmt", "-check", "-recursive", str(TF)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, f"not formatted: {result.stdout}"
