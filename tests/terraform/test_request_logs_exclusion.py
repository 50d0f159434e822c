"""The _Default-sink exclusion of the functions' Cloud Run request logs (terraform/modules/monitoring/request_logs.tf).

No Google provider here: read with python-hcl2, the filter rendered by substituting the module's two
interpolations, and checked against what the alerts and log-based metrics read (none of them may rely on
the excluded entries)."""

from __future__ import annotations

import re

from tests.terraform.hcl import modules

SERVICES = {"collect": "tp-collect", "transform": "tp-transform", "deliver": "tp-deliver"}


def exclusion() -> dict:
    return modules()["monitoring"].resource("google_logging_project_exclusion", "request_logs")


def rendered_filter(keep_status_from: int = 500) -> list[str]:
    text = exclusion()["filter"]
    text = re.sub(r"^<<-EOT\n|\n\s*EOT$", "", text)
    text = text.replace('${join("\\" OR \\"", values(var.services))}', '" OR "'.join(SERVICES.values()))
    text = text.replace("${var.request_logs.keep_status_from}", str(keep_status_from))
    assert "${" not in text, f"an interpolation the test does not render: {text}"
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_excludes_only_the_request_log_of_the_tagpipe_services_below_5xx():
    assert rendered_filter() == [
        'resource.type="cloud_run_revision"',
        'log_id("run.googleapis.com/requests")',
        'resource.labels.service_name=("tp-collect" OR "tp-transform" OR "tp-deliver")',
        "httpRequest.status<500",
    ]


def test_on_by_default_so_the_root_passes_nothing():
    mod = modules()["monitoring"]
    var = mod.variables["request_logs"]
    assert var["default"] == {}
    assert "exclude = optional(bool, true)" in var["type"]
    assert "keep_status_from = optional(number, 500)" in var["type"]
    assert exclusion()["count"] == "${var.request_logs.exclude ? 1 : 0}"
    assert "request_logs" not in modules()["root"].modules["monitoring"]
    assert exclusion()["name"] == "${var.prefix}-run-request-logs"  # one per stack: prefixes keep them apart


def test_no_alert_or_log_based_metric_reads_the_excluded_entries():
    mod = modules()["monitoring"]
    filters = [body["filter"] for body in mod.of_type("google_logging_metric").values()]
    for policy in mod.of_type("google_monitoring_alert_policy").values():
        for condition in policy.get("conditions", []):
            for kind in ("condition_matched_log", "condition_threshold", "condition_absent"):
                for block in condition.get(kind, []) if isinstance(condition.get(kind), list) else [condition.get(kind)]:
                    if isinstance(block, dict) and "filter" in block:
                        filters.append(block["filter"])
    assert filters, "found no filters to check"
    for f in filters:
        assert "run.googleapis.com/requests" not in f and "run.googleapis.com%2Frequests" not in f
        assert "httpRequest" not in f
    # the functions' own lines the metrics count are jsonPayload entries (stdout), never request entries
    for body in mod.of_type("google_logging_metric").values():
        assert "jsonPayload.message=" in body["filter"]
    # collect's request-based alerts read the request_count system metric, which exclusions do not touch
    assert 'metric.type = \\"run.googleapis.com/request_count\\"' in mod.text or \
        'metric.type = "run.googleapis.com/request_count"' in mod.text
