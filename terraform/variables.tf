# The user's edit surface is terraform.tfvars (copy terraform.tfvars.example). Every variable here
# is typed and described; objects use optional() so a tfvars file names only what it changes.

variable "project_id" {
  type        = string
  description = "Google Cloud project id to deploy into (not the number)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 lowercase letters, digits, hyphens), not a name or number."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions and the Pub/Sub push endpoints, e.g. europe-west1."
  default     = "europe-west1"
}

variable "prefix" {
  type        = string
  description = "Prefix of every resource name (topics, subscriptions, functions, service accounts). Same value as TAGPIPE_TOPIC_PREFIX."
  default     = "tagpipe"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}$", var.prefix))
    error_message = "prefix: 2-15 lowercase letters, digits or hyphens, starting with a letter (service account ids are limited to 30 characters)."
  }
}

variable "labels" {
  type        = map(string)
  description = "Extra labels put on every resource that takes labels (app=tagpipe and managed-by=terraform are always added)."
  default     = {}
}

variable "functions" {
  type = object({
    python_runtime = optional(string, "python312")
    source_dir     = optional(string, "../.dist")
    # collect: 1/6 vCPU, one hit per instance (Cloud Run's rule below 1 vCPU), scales to zero. Cloud Run
    # bills instance time in 100 ms steps and an idle min instance all month: per hit this is the cheapest
    # sizing that holds collect (~100 MiB) with ~20 ms per hit and a ~3-4 s cold start
    # (docs/benchmarks.md section 5). Was 1 vCPU / 512Mi / 80 / min 1. One hit per instance means ~40 hits/s
    # per instance: up to 1,000 instances (~40k hits/s) so a traffic peak is never refused; unused ones cost nothing.
    collect = optional(object({
      memory        = optional(string, "256Mi")
      cpu           = optional(string, "0.167")
      concurrency   = optional(number, 1)
      min_instances = optional(number, 0)
      max_instances = optional(number, 1000)
      timeout       = optional(number, 30)
    }), {})
    # transform, deliver: cpu and concurrency left unset follow stage_trigger (main.tf, local.stage_sizing):
    # push 1 vCPU / 40 at once, schedule 1/3 vCPU / 1 drain at a time
    transform = optional(object({
      memory        = optional(string, "512Mi")
      cpu           = optional(string)
      concurrency   = optional(number)
      min_instances = optional(number, 0)
      max_instances = optional(number, 50)
      timeout       = optional(number, 60)
    }), {})
    deliver = optional(object({
      memory        = optional(string, "512Mi")
      cpu           = optional(string)
      concurrency   = optional(number)
      min_instances = optional(number, 0)
      max_instances = optional(number, 50)
      timeout       = optional(number, 120)
    }), {})
    archive = optional(object({
      memory        = optional(string, "512Mi")
      cpu           = optional(string, "1")
      concurrency   = optional(number, 20)
      min_instances = optional(number, 0)
      max_instances = optional(number, 5)
      timeout       = optional(number, 60)
    }), {})
  })
  description = "Runtime and sizing of the three Cloud Functions (gen2). source_dir holds the zips scripts/package.sh builds, relative to this folder. See modules/functions/main.tf for why each default is what it is."
  default     = {}
}

variable "enable_archive_function" {
  type        = bool
  description = "Deploy the dead-letter archive function (functions/archive/main.py, tagpipe.pipeline.archive) behind a push subscription on the dead-letter topic, so a message Pub/Sub dead-letters on its own also gets its dead_lettered outcome and failed-event record. The raw dead letters reach BigQuery either way."
  default     = true
}

variable "stage_trigger" {
  type        = string
  description = "How transform and deliver are triggered. \"push\" (default): Pub/Sub pushes each message to the function as it arrives: lowest latency (about a second), one invocation per message. \"schedule\": pull subscriptions that the functions drain when Cloud Scheduler calls them every minute: events reach the vendors within about a minute, in a few invocations and full vendor batches (far cheaper per event). See docs/gcp.md."
  default     = "push"

  validation {
    condition     = contains(["push", "schedule"], var.stage_trigger)
    error_message = "stage_trigger must be \"push\" or \"schedule\"."
  }
}

variable "destinations" {
  type        = list(string)
  description = "The destination ids of your tagpipe.toml ([destinations.<id>], e.g. [\"meta\", \"ga4\"]), every one the config can route to. Each id gets a deliveries-<id> topic and a deliver-<id> subscription with its own retry and dead-letter policy (and, with the schedule trigger, its own drain job). An id missing here has no topic: transform cannot publish its tasks, and the hits retry and dead-letter (make deploy refuses to run then)."

  validation {
    condition     = length(var.destinations) > 0 && length(distinct(var.destinations)) == length(var.destinations)
    error_message = "destinations: list each destination id of tagpipe.toml once (at least one)."
  }

  validation {
    condition     = alltrue([for d in var.destinations : can(regex("^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$", d))])
    error_message = "destinations: ids of letters, digits, _ and - (they become subscription and job names)."
  }
}

variable "delivery" {
  type = object({
    max_delivery_attempts = optional(number, 10)
    min_backoff_seconds   = optional(number, 10)
    max_backoff_seconds   = optional(number, 600)
  })
  description = "Retry and dead-letter policy of the transform and deliver-<id> subscriptions, push or pull (keep in step with [delivery] in tagpipe.toml). Pub/Sub allows 5-100 attempts and backoffs of 0-600 s."
  default     = {}

  validation {
    condition     = var.delivery.max_delivery_attempts >= 5 && var.delivery.max_delivery_attempts <= 100
    error_message = "delivery.max_delivery_attempts must be between 5 and 100 (Pub/Sub's bounds)."
  }

  validation {
    condition     = var.delivery.min_backoff_seconds >= 0 && var.delivery.max_backoff_seconds <= 600 && var.delivery.min_backoff_seconds <= var.delivery.max_backoff_seconds
    error_message = "delivery backoffs must satisfy 0 <= min_backoff_seconds <= max_backoff_seconds <= 600."
  }
}

variable "bigquery" {
  type = object({
    dataset_id          = optional(string, "tagpipe")
    location            = optional(string, "EU")
    retention_days      = optional(map(number), {})
    deletion_protection = optional(bool, true)
    kms_key_name        = optional(string)
  })
  description = "The BigQuery dataset. retention_days maps a table (raw_hits, events, outcomes, failed_events, traces, dead_letters) to its partition expiry in days, over the defaults in modules/bigquery. kms_key_name: a Cloud KMS key for CMEK, or null for Google-managed encryption."
  default     = {}
}

variable "firestore" {
  type = object({
    location_id         = optional(string, "eur3")
    dedup_ttl_days      = optional(number, 35)
    deletion_protection = optional(bool, true)
  })
  description = "The Firestore database that holds the idempotency keys (delivered dedup keys, recorded outcomes). dedup_ttl_days: how long a delivered key blocks a repeat (longest vendor dedup window plus replay slack)."
  default     = {}
}

variable "secrets" {
  type        = map(list(string))
  description = "Secret Manager secrets, by environment variable name, each with the functions that get it as that variable. Terraform creates only the empty containers: add each value with `printf %s \"$VALUE\" | gcloud secrets versions add <prefix>-<NAME> --data-file=-` (never in tfvars or state). Remove the vendors you do not use."
  default = {
    META_ACCESS_TOKEN          = ["deliver"]
    GA4_API_SECRET             = ["deliver"]
    GOOGLE_ADS_DEVELOPER_TOKEN = ["deliver"]
    GOOGLE_ADS_CLIENT_ID       = ["deliver"]
    GOOGLE_ADS_CLIENT_SECRET   = ["deliver"]
    GOOGLE_ADS_REFRESH_TOKEN   = ["deliver"]
    TIKTOK_ACCESS_TOKEN        = ["deliver"]
    TAGPIPE_WEBHOOK_SECRET     = ["deliver"]
    SLACK_WEBHOOK_URL          = []
    SMTP_PASSWORD              = []
  }

  validation {
    condition     = alltrue([for fns in values(var.secrets) : alltrue([for f in fns : contains(["collect", "transform", "deliver"], f)])])
    error_message = "secrets: each value lists functions among collect, transform, deliver."
  }
}

variable "alerting" {
  type = object({
    emails                         = optional(list(string), [])
    slack_channel                  = optional(string)
    extra_channels                 = optional(list(string), [])
    delivery_error_rate            = optional(number, 0.05)
    delivery_min_events            = optional(number, 20)
    oldest_unacked_age_seconds     = optional(number, 900)
    collect_5xx_rate               = optional(number, 0.01)
    collect_error_rate             = optional(number, 0.10)
    collect_min_hits               = optional(number, 20)
    traffic_silence_minutes        = optional(number, 60)
    traffic_window_minutes         = optional(number, 60)
    traffic_min_share_of_last_week = optional(number, 0.5)
    traffic_min_baseline_hits      = optional(number, 100)
    match_keys                     = optional(list(string), ["em", "ph", "fbp", "fbc"])
    match_keys_window_minutes      = optional(number, 60)
    match_keys_baseline_days       = optional(number, 7)
    match_keys_max_drop            = optional(number, 0.25)
    match_keys_min_events          = optional(number, 50)
    match_keys_min_baseline_share  = optional(number, 0.05)
    match_quality_max_drop_points  = optional(number, 1.5)
    auto_close_hours               = optional(number, 24)
    log_alert_rate_limit_minutes   = optional(number, 60)
  })
  description = <<-EOT
    Alert policies (the local stack's alert rules, docs/monitoring.md) and where they notify. Every policy
    notifies every channel: emails, slack_channel (e.g. #tagpipe-alerts, needs slack_auth_token) and
    extra_channels (ids of channels made elsewhere, e.g. a Slack channel created in the console so no
    token reaches the state). Rates and shares are fractions (0.05 = 5%), like the local rules' percents:
    delivery_error_rate / delivery_min_events = delivery_failure_rate; collect_error_rate /
    collect_min_hits = collect_error_rate; traffic_silence_minutes, traffic_window_minutes,
    traffic_min_share_of_last_week, traffic_min_baseline_hits = traffic_drop; match_keys_* =
    match_keys_drop (max_drop is relative: 80% -> 60% is 0.25); match_quality_max_drop_points =
    match_quality_drop (it shares the match_keys window, baseline and minimum events); oldest_unacked_age_seconds = backlog_age.
    auto_close_hours closes incidents whose data stopped; log_alert_rate_limit_minutes spaces the
    notifications of the log-based "credentials refused" policy (Cloud Monitoring's floor is 5).
  EOT
  default     = {}

  validation {
    condition = alltrue([for r in [
      var.alerting.delivery_error_rate, var.alerting.collect_5xx_rate, var.alerting.collect_error_rate,
      var.alerting.traffic_min_share_of_last_week, var.alerting.match_keys_max_drop, var.alerting.match_keys_min_baseline_share,
    ] : r > 0 && r <= 1])
    error_message = "alerting: rates and shares are fractions between 0 and 1 (0.05 = 5%), not percents."
  }

  validation {
    condition     = alltrue([for k in var.alerting.match_keys : can(regex("^[a-z0-9_]+$", k))]) && length(var.alerting.match_keys) > 0
    error_message = "alerting.match_keys: match-key names as the functions log them (em, ph, fbp, fbc, external_id, ...): lowercase letters, digits, underscores."
  }

  validation {
    condition     = var.alerting.traffic_silence_minutes >= 1 && var.alerting.traffic_silence_minutes <= 1470
    error_message = "alerting.traffic_silence_minutes: 1 to 1470 (a metric-absence condition lasts at most 24.5 hours)."
  }

  validation {
    condition = alltrue([for m in [var.alerting.traffic_silence_minutes, var.alerting.traffic_window_minutes, var.alerting.match_keys_window_minutes, var.alerting.match_keys_baseline_days] :
    m >= 1 && floor(m) == m])
    error_message = "alerting.traffic_silence_minutes, traffic_window_minutes, match_keys_window_minutes and match_keys_baseline_days are whole numbers >= 1 (they become PromQL ranges such as [60m] and [7d])."
  }

  validation {
    condition     = var.alerting.auto_close_hours >= 0.5 && var.alerting.log_alert_rate_limit_minutes >= 5
    error_message = "alerting.auto_close_hours must be at least 0.5 (30 minutes) and log_alert_rate_limit_minutes at least 5 (Cloud Monitoring sends at most one log-based notification per 5 minutes)."
  }
}

variable "slack_auth_token" {
  type        = string
  description = "Slack OAuth token for the Slack notification channel (xoxb-...). Pass it as TF_VAR_slack_auth_token, never in a file. Cloud Monitoring keeps it in the channel's sensitive_labels, so it is in the Terraform state: use an encrypted remote state, or create the channel in the console and use alerting.extra_channels."
  default     = null
  sensitive   = true
}

variable "enable_custom_domain" {
  type        = bool
  description = "Serve collect from your own domain through a global external HTTPS load balancer (first-party cookies; see docs/first-party-serving.md)."
  default     = false
}

variable "custom_domain" {
  type = object({
    domains         = optional(list(string), [])
    security_policy = optional(string)
  })
  description = "With enable_custom_domain: the hostnames (e.g. [\"t.example.com\"]) for the managed certificate, and an optional Cloud Armor security policy self-link for the backend."
  default     = {}

  validation {
    condition     = length(var.custom_domain.domains) <= 100
    error_message = "custom_domain.domains: a managed certificate covers at most 100 domains."
  }
}

variable "enable_apis" {
  type        = bool
  description = "Enable the Google APIs the stack uses (turn off when a platform team manages them)."
  default     = true
}

variable "dashboard_enabled" {
  type        = bool
  description = "Also deploy the dashboard and debug view as a Cloud Run service over the BigQuery tables (modules/dashboard; docs/gcp.md). Off by default: `tagpipe dashboard --store bigquery` runs it on your machine instead."
  default     = false
}

variable "dashboard" {
  type = object({
    image             = optional(string, "")
    members           = optional(list(string), [])
    ingress           = optional(string, "INGRESS_TRAFFIC_ALL")
    lookback_days     = optional(number, 7)
    cache_ttl_seconds = optional(number, 60)
    max_scan_gb       = optional(number, 10)
    max_instances     = optional(number, 2)
  })
  description = "With dashboard_enabled: the image (terraform/modules/dashboard/Dockerfile), who may open it (user:/group:/domain: members, roles/run.invoker), Cloud Run ingress, the debug view's look-back in days, the overview cache in seconds, a per-query scan cap in GiB and the instance cap."
  default     = {}
}
