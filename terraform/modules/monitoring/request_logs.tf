# Cloud Run request logs: one entry per HTTP request to each function (collect's hits and every Pub/Sub
# push to transform and deliver), ingested into the _Default bucket at $0.50/GiB beyond the free 50 GiB
# a month (https://cloud.google.com/stackdriver/pricing). At ~1 KB an entry and about three requests per
# event in the push shape that is ~$1.4 per million events. Nothing here reads them: the alerts use the
# run.googleapis.com/request_count metric (a system metric, not derived from these entries) and the
# log-based metrics above match the functions' own jsonPayload lines (run.googleapis.com/stdout).
# The exclusion drops them from the _Default sink except the server errors (status >= 500, kept for
# debugging); entries without an httpRequest.status do not match the comparison and are kept.
#
# Provider: https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/logging_project_exclusion
# (name, description, filter, disabled); a project-level exclusion applies to the _Default sink
# (https://cloud.google.com/logging/docs/routing/overview#exclusions). log_id() and the comparison
# operators: https://cloud.google.com/logging/docs/view/logging-query-language
resource "google_logging_project_exclusion" "request_logs" {
  count       = var.request_logs.exclude ? 1 : 0
  project     = var.project_id
  name        = "${var.prefix}-run-request-logs"
  description = "tagpipe: Cloud Run request logs of the tagpipe functions below HTTP ${var.request_logs.keep_status_from} (alerts use request_count)."
  filter      = <<-EOT
    resource.type="cloud_run_revision"
    log_id("run.googleapis.com/requests")
    resource.labels.service_name=("${join("\" OR \"", values(var.services))}")
    httpRequest.status<${var.request_logs.keep_status_from}
  EOT
}
