# Cloud Scheduler jobs that make the transform and deliver functions drain their pull subscriptions
# (stage_trigger = "schedule"; shared/tagpipe/pipeline/drain.py):
#
#   every minute  POST <transform url>/drain  {}                     -> drains {prefix}-transform
#   every minute  POST <deliver url>/drain    {"destination": "<id>"} -> drains {prefix}-deliver-<id>
#                 (one job per destination)
#
# The requests carry an OIDC token of the invoker account, which holds roles/run.invoker on
# transform and deliver (modules/functions) and nothing else. Cloud Run counts Cloud Scheduler
# requests from the same project as internal traffic, so the functions keep ingress
# ALLOW_INTERNAL_ONLY.
#
# No retries: the next minute's run is the retry, and a drain that fails midway leaves its
# messages leased until their ack deadline, then another drain takes them. A drain still running
# when the next run fires is safe: each pulled message is leased to one drain.

locals {
  jobs = merge(
    { transform = { url = var.transform_url, body = {}, timeout = var.timeouts.transform } },
    { for d in var.destinations : "deliver-${d}" => { url = var.deliver_url, body = { destination = d }, timeout = var.timeouts.deliver } },
  )
}

resource "google_cloud_scheduler_job" "drain" {
  for_each = local.jobs

  project     = var.project_id
  region      = var.region
  name        = "${var.prefix}-drain-${each.key}"
  description = "tagpipe: drain ${var.prefix}-${each.key} (shared/tagpipe/pipeline/drain.py)"
  schedule    = var.schedule
  time_zone   = "Etc/UTC"
  # how long Scheduler waits for the answer: the function's timeout (HTTP targets allow 15 s-30 min)
  attempt_deadline = "${max(15, min(1800, each.value.timeout))}s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${each.value.url}/drain"
    body        = base64encode(jsonencode(each.value.body))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = var.invoker_service_account
      audience              = each.value.url
    }
  }
}

# Cloud Scheduler's service agent mints the jobs' OIDC tokens as the invoker account (its project
# role normally covers this; granting it on that one account keeps projects where the agent lost
# the role working, as push_token_creator does for Pub/Sub).
resource "google_service_account_iam_member" "scheduler_token_creator" {
  service_account_id = "projects/${var.project_id}/serviceAccounts/${var.invoker_service_account}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.scheduler_service_agent}"
}
