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
    collect = optional(object({
      memory        = optional(string, "512Mi")
      cpu           = optional(string, "1")
      concurrency   = optional(number, 80)
      min_instances = optional(number, 1)
      max_instances = optional(number, 100)
      timeout       = optional(number, 30)
    }), {})
    transform = optional(object({
      memory        = optional(string, "512Mi")
      cpu           = optional(string, "1")
      concurrency   = optional(number, 40)
      min_instances = optional(number, 0)
      max_instances = optional(number, 50)
      timeout       = optional(number, 60)
    }), {})
    deliver = optional(object({
      memory        = optional(string, "512Mi")
      cpu           = optional(string, "1")
      concurrency   = optional(number, 40)
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
  description = "Deploy the dead-letter archive function (functions/archive/main.py, shared.pipeline.archive) behind a push subscription on the dead-letter topic, so a message Pub/Sub dead-letters on its own also gets its dead_lettered outcome and failed-event record. The raw dead letters reach BigQuery either way."
  default     = true
}

variable "delivery" {
  type = object({
    max_delivery_attempts = optional(number, 10)
    min_backoff_seconds   = optional(number, 10)
    max_backoff_seconds   = optional(number, 600)
  })
  description = "Retry and dead-letter policy of the transform and deliver push subscriptions (keep in step with [delivery] in tagpipe.toml). Pub/Sub allows 5-100 attempts and backoffs of 0-600 s."
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
    WEBHOOK_SECRET             = ["deliver"]
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
    emails                     = optional(list(string), [])
    slack_channel              = optional(string)
    extra_channels             = optional(list(string), [])
    delivery_error_rate        = optional(number, 0.05)
    oldest_unacked_age_seconds = optional(number, 900)
    collect_5xx_rate           = optional(number, 0.01)
    traffic_silence_minutes    = optional(number, 60)
  })
  description = "Alert policies and where they notify. slack_channel (e.g. #tagpipe-alerts) needs slack_auth_token; extra_channels takes ids of notification channels made elsewhere (e.g. a Slack channel created in the console, so no token reaches the state)."
  default     = {}
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
