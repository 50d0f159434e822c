"""The local alert rules (docs/monitoring.md, shared/tagpipe/monitoring/config.py) as Cloud Monitoring policies.

No Google provider here: these tests read terraform/modules/monitoring with python-hcl2, check it
against the rule table of docs/monitoring.md, the rules' defaults and the log lines the functions
really write (shared/tagpipe/monitoring/logs.py), and, where a `terraform` binary exists, render every PromQL
query and documentation text with the default variables (no provider needed for locals) and parse
the queries with promql-parser when `.venv/tools/promql` has it.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tagpipe import reasons
from tagpipe.models import Outcome, OutcomeKind
from tagpipe.monitoring import language
from tagpipe.monitoring.config import (
    RULE_TYPES,
    BacklogAgeRule,
    CollectErrorRateRule,
    DeadLetterRule,
    DeliveryFailureRateRule,
    MatchKeysRule,
    TrafficDropRule,
)
from tagpipe.monitoring.logs import JsonFormatter, log_outcomes
from tests.terraform.hcl import ROOT, TF, block, modules
from tests.terraform.test_static import SECRET_PATTERNS
from tests.tools import missing

DOC = ROOT / "docs" / "monitoring.md"
MODULE = TF / "modules" / "monitoring"
GCP_ONLY = "gcp_infrastructure"
PROMQL_PYTHON = ROOT / ".venv" / "tools" / "promql" / "bin" / "python"


def mon():
    return modules()["monitoring"]


# an entry's condition key -> the provider block ./alert_policies renders it as
CONDITION_BLOCKS = {"promql": "condition_prometheus_query_language", "log_match": "condition_matched_log",
                    "threshold": "condition_threshold", "absent": "condition_absent"}


def policies() -> dict[str, dict]:
    """The entries of local.alert_policies (as written, interpolations unexpanded)."""
    return mon().locals["alert_policies"]


def policy_resource() -> dict:
    """The one google_monitoring_alert_policy (for_each over the entries) in modules/monitoring/alert_policies."""
    (body,) = modules()["alert_policies"].of_type("google_monitoring_alert_policy").values()
    return body


def rule_of(body: dict) -> str:
    assert re.fullmatch(r"[a-z0-9_-]+", body["rule"]), body["rule"]
    return body["rule"]


def condition(body: dict) -> tuple[str, dict]:
    """(the provider's condition block name, the entry's condition attributes)."""
    kinds = [k for k in CONDITION_BLOCKS if body.get(k) is not None]
    assert len(kinds) == 1, kinds
    return CONDITION_BLOCKS[kinds[0]], body[kinds[0]]


def heredoc(value: str) -> str:
    return value.removeprefix("<<-EOT\n").removesuffix("EOT").rstrip(" ")


def section(text: str, start: str, stop: str) -> str:
    a = text.index(start)
    b = text.index(stop, a + len(start))
    return text[a:b]


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header


def object_defaults(type_expr: str) -> dict:
    """`${object({a = optional(number, 1), b = optional(list(string), ["x"])})}` -> {"a": 1, "b": ["x"]}."""
    inner = re.fullmatch(r"\$\{object\(\{(.*)\}\)\}", type_expr.strip(), re.S).group(1)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = {}
    for part in filter(str.strip, parts):
        name, spec = (s.strip() for s in part.split("=", 1))
        m = re.fullmatch(r"optional\((list\(string\)|number|string|bool)(?:,\s*(.*))?\)", spec, re.S)
        assert m, part
        out[name] = json.loads(m.group(2)) if m.group(2) else None
    return out


# --------------------------------------------------------------------------- every rule has a policy


def test_the_docs_rule_table_is_the_code_s():
    rules = [re.fullmatch(r"`(\w+)`", r[0]).group(1) for r in table_rows(section(DOC.read_text(), "## Alert rules", "\n### "))]
    assert sorted(rules) == sorted(RULE_TYPES)


def test_every_local_rule_has_a_policy():
    by_rule: dict[str, list[str]] = {}
    for name, body in policies().items():
        by_rule.setdefault(rule_of(body), []).append(name)
    for rule in RULE_TYPES:
        assert by_rule.get(rule), f"local rule {rule} has no Cloud Monitoring policy (user_labels rule = {rule!r})"
    assert set(by_rule) <= set(RULE_TYPES) | {GCP_ONLY}, set(by_rule) - set(RULE_TYPES)
    # the rule's two halves on GCP: silence and the week-over-week drop; the failure rate and the
    # reason a marketer can act on; events dead-lettered by deliver and by Pub/Sub
    assert set(by_rule["traffic_drop"]) == {"traffic_silence", "traffic_drop"}
    assert set(by_rule["delivery_failure_rate"]) == {"delivery_error_rate", "credentials_refused"}
    assert set(by_rule["dead_letters"]) == {"dead_lettered_events", "dead_lettered"}


def test_the_gcp_mapping_in_the_docs_matches_the_module():
    text = section(DOC.read_text(), "## On GCP", "\n## Code")
    assert "to add" not in text.lower()
    rows = table_rows(section(text, "| local rule | policy |", "\n\n"))
    documented: dict[str, str] = {}
    for rule_cell, policy_cell, *_ in rows:
        rule = GCP_ONLY if rule_cell == "(GCP only)" else re.fullmatch(r"`(\w+)`", rule_cell).group(1)
        for name in re.findall(r"`(\w+)`", policy_cell):
            documented[name] = rule
    assert set(documented) == set(policies()), "docs/monitoring.md 'On GCP' table and the module's policies differ"
    for name, rule in documented.items():
        assert rule_of(policies()[name]) == rule, f"{name}: docs say {rule}"
    assert {r for r in documented.values() if r != GCP_ONLY} == set(RULE_TYPES)


def test_thresholds_default_to_the_local_rules_defaults():
    defaults = object_defaults(mon().variables["alerting"]["type"])
    # the root variable is the module's, attribute for attribute
    assert object_defaults(modules()["root"].variables["alerting"]["type"]) == defaults
    assert modules()["root"].modules["monitoring"]["alerting"] == "${var.alerting}"
    fail, dead, traffic = DeliveryFailureRateRule(), DeadLetterRule(), TrafficDropRule()
    backlog, collect, keys = BacklogAgeRule(), CollectErrorRateRule(), MatchKeysRule()
    assert defaults["delivery_error_rate"] == pytest.approx(fail.max_failure_percent / 100)
    assert defaults["delivery_min_events"] == fail.min_events
    assert defaults["oldest_unacked_age_seconds"] == backlog.max_age_minutes * 60
    assert defaults["collect_error_rate"] == pytest.approx(collect.max_error_percent / 100)
    assert defaults["collect_min_hits"] == collect.min_hits
    assert defaults["traffic_silence_minutes"] == traffic.no_hits_minutes
    assert defaults["traffic_window_minutes"] == traffic.window_minutes
    assert defaults["traffic_min_share_of_last_week"] == pytest.approx(traffic.min_percent_of_last_week / 100)
    assert defaults["traffic_min_baseline_hits"] == traffic.min_baseline_hits
    assert defaults["match_keys"] == keys.keys
    assert defaults["match_keys_window_minutes"] == keys.window_minutes
    assert defaults["match_keys_baseline_days"] == keys.baseline_days
    assert defaults["match_keys_max_drop"] == pytest.approx(keys.max_drop_percent / 100)
    assert defaults["match_keys_min_events"] == keys.min_events
    assert defaults["match_keys_min_baseline_share"] == pytest.approx(keys.min_baseline_percent / 100)
    # the fixed windows in the queries are the rules' default windows
    assert fail.window_minutes == dead.window_minutes == collect.window_minutes == 15
    for name in ("delivery_error_rate", "dead_lettered_events"):
        assert "[15m]" in condition(policies()[name])[1]["query"], name
    assert mon().locals["collect_window"] == "[15m]"


# --------------------------------------------------------------------------- channels, words, storms


def test_every_policy_notifies_email_and_slack():
    channels = mon().locals["channels"]
    for part in ("google_monitoring_notification_channel.email", "google_monitoring_notification_channel.slack",
                 "var.alerting.extra_channels"):
        assert part in channels, part
    assert mon().modules["alert_policies"]["notification_channels"] == "${local.channels}"
    assert policy_resource()["notification_channels"] == "${var.notification_channels}"
    assert policy_resource()["for_each"] == "${var.policies}"
    assert policy_resource()["user_labels"] == "${merge(var.labels, {rule = each.value.rule})}"
    # plan warns when one of the two is missing
    check = re.search(r'check "alerts_reach_email_and_slack" \{.*?condition\s*=\s*(.*?)\n', mon().text, re.S)
    assert check, "check block alerts_reach_email_and_slack"
    assert "length(var.alerting.emails) > 0" in check.group(1)
    assert "var.alerting.slack_channel != null" in check.group(1) and "extra_channels" in check.group(1)
    # the Slack token only ever comes from the sensitive variable
    slack = mon().resource("google_monitoring_notification_channel", "slack")
    assert block(slack, "sensitive_labels")["auth_token"] == "${var.slack_auth_token}"
    assert modules()["root"].modules["monitoring"]["slack_auth_token"] == "${var.slack_auth_token}"


def test_every_policy_speaks_to_a_marketer():
    assert block(policy_resource(), "documentation")["mime_type"] == "text/markdown"
    for name, body in policies().items():
        doc = {"subject": body["subject"], "content": heredoc(body["content"])}
        assert 10 < len(doc["subject"]) <= 255, name
        content = doc["content"]
        assert len(content) < 8192, name
        for part in ("**What broke:**", "**What it means:**", "**What to do"):
            assert part in content, f"{name}: documentation lacks {part}"
        # Cloud Monitoring's own variables must reach it unexpanded: $${...} in HCL
        assert not re.search(r"(?<!\$)\$\{(metric|resource|log|policy|condition)\.", content + doc["subject"]), name
        assert body["severity"] in ("CRITICAL", "ERROR", "WARNING"), name
    token = policies()["credentials_refused"]["content"]
    assert "Generate access token" in token and "gcloud secrets versions add" in token and "Replay" in token
    assert "tagpipe replay" in token  # the same command replays on GCP (docs/replay.md)


def test_storm_control_fits_each_kind_of_policy():
    strategy = block(policy_resource(), "alert_strategy")
    assert strategy["auto_close"] == "${var.auto_close}"
    assert mon().modules["alert_policies"]["auto_close"] == "${local.auto_close}"
    # log-based: the API wants a rate limit, and notifies on open only; the others notify open and
    # close (the local "Resolved") and take no rate limit
    assert strategy["notification_prompts"] == '${each.value.log_match == null ? ["OPENED", "CLOSED"] : null}'
    (limit,) = [d["notification_rate_limit"] for d in strategy["dynamic"]]
    assert limit["for_each"] == "${each.value.log_match == null ? [] : [var.log_alert_rate_limit_seconds]}"
    assert limit["content"][0]["period"] == "${notification_rate_limit.value}s"
    assert mon().modules["alert_policies"]["log_alert_rate_limit_seconds"] == \
        "${var.alerting.log_alert_rate_limit_minutes * 60}"
    for name, body in policies().items():
        kind, cond = condition(body)
        if kind != "condition_matched_log":
            assert "duration" in cond, f"{name}: a metric condition holds for a while before it opens"
    assert mon().locals["auto_close"] == "${floor(var.alerting.auto_close_hours * 3600)}s"


# --------------------------------------------------------------------------- log-based metrics vs the log lines


@pytest.fixture
def log_lines(caplog) -> list[dict]:
    caplog.set_level(logging.INFO, logger="tagpipe.outcomes")
    log_outcomes([
        Outcome(hit_id="h1", event_uid="e1", destination="meta", outcome=OutcomeKind.DELIVERED, identifiers=["em", "fbp"]),
        Outcome(hit_id="h2", event_uid="e2", destination="meta", outcome=OutcomeKind.DEAD_LETTERED, reason="meta:190"),
        Outcome(hit_id="h3", outcome=OutcomeKind.REJECTED, reason="invalid_message"),
    ])
    return [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "tagpipe.outcomes"]


def extracted_field(expr: str) -> str:
    m = re.fullmatch(r"EXTRACT\(jsonPayload\.(\w+)\)", expr)
    assert m, expr
    return m.group(1)


@pytest.mark.parametrize("metric, message, labels", [
    ("outcomes", "outcome_counts", {"destination", "outcome", "reason"}),
    ("match_keys", "match_key_counts", {"destination", "key"}),
])
def test_log_based_metrics_read_what_the_functions_log(log_lines, metric, message, labels):
    body = mon().resource("google_logging_metric", metric)
    assert f'jsonPayload.message="{message}"' in body["filter"]
    assert "${local.function_logs}" in body["filter"]
    descriptor = block(body, "metric_descriptor")
    assert descriptor["metric_kind"] == "DELTA" and descriptor["value_type"] == "DISTRIBUTION"
    declared = {label["key"] for label in descriptor["labels"]}
    assert declared == labels == set(body["label_extractors"]), "every label needs its extractor, and no more"
    assert "bucket_options" in body  # required for DISTRIBUTION
    lines = [doc for doc in log_lines if doc["message"] == message]
    assert lines, f"log_outcomes wrote no {message} line"
    for doc in lines:
        assert isinstance(doc[extracted_field(body["value_extractor"])], int)  # count: the value summed
        for label, expr in body["label_extractors"].items():
            assert isinstance(doc[extracted_field(expr)], str), label
    assert {(d["destination"], d["key"]) for d in log_lines if d["message"] == "match_key_counts"} == {
        ("meta", "em"), ("meta", "fbp")}
    assert {d["destination"] for d in log_lines if d["message"] == "outcome_counts" and d["outcome"] == "rejected"} == {"*"}


def test_credentials_policy_matches_known_reason_codes(log_lines, render):
    # terraform reads the codes the registry marks `credentials` (shared/tagpipe/reasons.json)
    assert render["credential_reasons"] == reasons.credential_codes()
    assert {"meta:190", "google_ads:oauth_token_expired", "http:401"} <= set(render["credential_reasons"])
    assert all(code in language.REASONS for code in render["credential_reasons"]), "each has its words"
    kind, cond = condition(policies()["credentials_refused"])
    assert kind == "condition_matched_log"
    assert 'jsonPayload.message="outcome_counts"' in heredoc(cond["filter"])
    assert "local.credential_reasons" in cond["filter"]
    for label, expr in cond["label_extractors"].items():
        assert label in ("destination", "reason")
        assert all(extracted_field(expr) in doc for doc in log_lines if doc["message"] == "outcome_counts")
    assert any(d.get("reason") == "meta:190" and d["outcome"] == "dead_lettered" for d in log_lines)


def test_no_secret_literal_in_the_monitoring_docs_or_policies():
    for path in (DOC, MODULE / "main.tf", TF / "terraform.tfvars.example"):
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{path}: looks like a secret ({pattern.pattern})"
    for body in policies().values():
        assert "slack_auth_token" not in json.dumps(body)
    assert "slack_auth_token" not in json.dumps(policy_resource())


# --------------------------------------------------------------------------- rendered with terraform


def rendered(tmp: Path) -> dict:
    """The module's locals rendered by terraform itself with the default variables (locals need no
    provider), local.alert_policies passed through ./alert_policies' typed `policies` variable:
    {"policies": {name: entry, optional attributes filled}, "alerting": {...}}."""
    src = (MODULE / "main.tf").read_text()
    blocks = []
    for start in (m.start() + 1 for m in re.finditer(r"\nlocals \{", src)):
        blocks.append(src[start:src.index("\n}\n", start) + 3])
    local_block = "\n".join(blocks)
    # channels name resources, which cannot exist without the provider
    local_block = re.sub(r"\n  channels = concat\(.*?\n  \)\n", "\n", local_block, flags=re.S)
    assert not re.search(r"\bgoogle_[a-z_]+\.", re.sub(r"#.*", "", local_block)), "locals other than channels name resources"
    # files the locals read, from where the module lives
    local_block = local_block.replace("${path.module}/", f"{MODULE}/")
    # the entries go through ./alert_policies' typed variable and its validations, as in a plan
    typed = tmp / "alert_policies"
    typed.mkdir()
    shutil.copy(MODULE / "alert_policies" / "variables.tf", typed / "variables.tf")
    (typed / "outputs.tf").write_text('output "policies" {\n  value = var.policies\n}\n')
    call = ('module "alert_policies" {\n  source = "./alert_policies"\n  project_id = var.project_id\n'
            '  notification_channels = []\n  auto_close = local.auto_close\n'
            '  log_alert_rate_limit_seconds = 300\n  policies = local.alert_policies\n}\n')
    outputs = ('output "alerting" {\n  value = var.alerting\n}\n'
               'output "policies" {\n  value = module.alert_policies.policies\n}\n'
               'output "credential_reasons" {\n  value = local.credential_reasons\n}\n')
    (tmp / "main.tf").write_text(local_block + "\n" + call + outputs)
    shutil.copy(MODULE / "variables.tf", tmp / "variables.tf")
    (tmp / "terraform.tfvars").write_text(
        'project_id = "my-project"\nprefix = "tagpipe"\n'
        'services = { collect = "tagpipe-collect", transform = "tagpipe-transform", deliver = "tagpipe-deliver" }\n'
        'subscriptions = { stages = { transform = "tagpipe-transform", deliver = "tagpipe-deliver" },'
        ' archive = "tagpipe-dead-letter-to-bigquery", records = ["tagpipe-outcomes-to-bigquery"] }\n')
    terraform = shutil.which("terraform")
    env = {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "PATH": str(Path(terraform).parent)}
    for args in (["init", "-input=false", "-no-color"], ["apply", "-auto-approve", "-input=false", "-no-color"]):
        result = subprocess.run([terraform, *args], cwd=tmp, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = subprocess.run([terraform, "output", "-json"], cwd=tmp, capture_output=True, text=True, timeout=60, env=env)
    return {k: v["value"] for k, v in json.loads(out.stdout).items()}


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    if shutil.which("terraform") is None:
        missing("terraform", "terraform not installed: the queries are not rendered")
    return rendered(tmp_path_factory.mktemp("monitoring-render"))


def promql_queries(render: dict) -> dict[str, str]:
    return {name: p["promql"]["query"] for name, p in render["policies"].items() if p.get("promql")}


def test_rendered_promql_names_the_metrics_the_module_creates(render):
    queries = promql_queries(render)
    assert set(queries) == {"delivery_error_rate", "dead_lettered_events", "traffic_drop", "collect_error_rate",
                            "match_keys_drop", "match_quality_drop"}
    metrics = {"logging_googleapis_com:user_tagpipe_delivery_outcomes_sum",  # google_logging_metric.outcomes
               "logging_googleapis_com:user_tagpipe_match_keys_sum",  # google_logging_metric.match_keys
               "run_googleapis_com:request_count"}
    for name, query in queries.items():
        assert "${" not in query and "%{" not in query, name
        used = re.findall(r"([a-z_]+:[a-z_]+)(\{[^}]*\})?", query)
        assert used, name
        for metric, selector in used:
            assert metric in metrics, f"{name}: {metric}"
            # log-based metrics can map to several resource types (promql-mapping)
            assert selector and 'monitored_resource="cloud_run_revision"' in selector, f"{name}: {metric}{selector}"
    assert 'service_name="tagpipe-collect"' in queries["traffic_drop"] and "offset 1w" in queries["traffic_drop"]
    assert "[7d] offset 60m" in queries["match_keys_drop"] and 'key=~"em|ph|fbp|fbc"' in queries["match_keys_drop"]
    assert 'destination="*",outcome="rejected"' in queries["collect_error_rate"]
    assert 'response_code!~"403|404|405"' in queries["collect_error_rate"]
    assert "> 0.05" in queries["delivery_error_rate"] and ">= 20" in queries["delivery_error_rate"]
    # a vanished key is a drop to 0%, a stopped site a drop to 0 hits: never a missing series
    assert "or 0 * sum by (destination, key)" in queries["match_keys_drop"]
    assert "or vector(0)" in queries["traffic_drop"]


def test_rendered_promql_parses(render):
    if not PROMQL_PYTHON.exists():
        missing("promql", "promql-parser not installed: python3 -m venv .venv/tools/promql && "
                    ".venv/tools/promql/bin/pip install promql-parser")
    queries = promql_queries(render)
    script = ("import json, sys, promql_parser\n"
              "for name, q in json.load(sys.stdin).items():\n"
              "    e = promql_parser.parse(q)\n"
              "    assert type(e).__name__ == 'BinaryExpr', (name, type(e).__name__)\n"
              "    print(name, e.op)\n")
    result = subprocess.run([str(PROMQL_PYTHON), "-c", script], input=json.dumps(queries), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    ops = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    # the threshold is the outermost comparison, or the first operand of the "and" that adds the
    # volume guards (no verdict below min events / without a baseline)
    assert ops["dead_lettered_events"] == ">"
    for name in ("delivery_error_rate", "traffic_drop", "collect_error_rate", "match_keys_drop"):
        assert ops[name] == "and", name


def test_rendered_words_fit_and_keep_cloud_monitoring_variables(render):
    assert set(render["policies"]) == set(policies())
    for name, policy in render["policies"].items():
        assert len(policy["subject"]) <= 255, name
        assert len(policy["content"]) <= 8192, name
        assert "${var." not in policy["content"] and "${local." not in policy["content"], name
        for text in (policy["subject"], policy["content"]):
            for var in re.findall(r"\$\{([^}]*)\}", text):
                assert re.fullmatch(r"(metric\.label|resource\.label|log\.extracted_label)\.\w+", var), f"{name}: {var}"
            for pattern in SECRET_PATTERNS:
                assert not pattern.search(text), name
        for link in policy["links"]:
            url = link["url"]
            assert url.startswith("https://console.cloud.google.com/") and " " not in url and "+" not in url, name
    words = render["policies"]
    assert "${metric.label.destination}" in words["delivery_error_rate"]["content"]
    assert "${log.extracted_label.reason}" in words["credentials_refused"]["subject"]
    assert "tagpipe-META_ACCESS_TOKEN --project my-project" in words["credentials_refused"]["content"]
    assert render["alerting"]["match_keys"] == ["em", "ph", "fbp", "fbc"]
