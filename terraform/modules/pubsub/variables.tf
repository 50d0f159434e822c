variable "project_id" {
  type        = string
  description = "Project of the topics and subscriptions."
}

variable "prefix" {
  type        = string
  description = "Name prefix (TAGPIPE_TOPIC_PREFIX): topics and subscriptions are {prefix}-<name>."
}

variable "pubsub_service_agent" {
  type        = string
  description = "Email of the project's Pub/Sub service agent (service-<number>@gcp-sa-pubsub.iam.gserviceaccount.com)."
}

variable "push_endpoints" {
  type        = map(string)
  description = "Function (transform, deliver, optionally dead-letter-archive) -> HTTPS URL: the push endpoint and OIDC audience of its subscriptions (push trigger; the archive one always)."

  validation {
    condition     = alltrue([for k, v in var.push_endpoints : contains(["transform", "deliver", "dead-letter-archive"], k) && startswith(v, "https://")])
    error_message = "push_endpoints: keys transform, deliver and optionally dead-letter-archive; values https:// URLs."
  }
}

variable "trigger" {
  type        = string
  description = "How transform and deliver get their messages: push (a push subscription per stage and destination) or schedule (pull subscriptions the functions drain when Cloud Scheduler calls them)."
  default     = "push"

  validation {
    condition     = contains(["push", "schedule"], var.trigger)
    error_message = "trigger must be \"push\" or \"schedule\"."
  }
}

variable "destinations" {
  type        = list(string)
  description = "Destination ids of the config ([destinations.<id>] in tagpipe.toml): a deliveries-<id> topic and a deliver-<id> subscription each."

  validation {
    condition     = length(var.destinations) > 0 && alltrue([for d in var.destinations : can(regex("^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$", d))])
    error_message = "destinations: at least one id; letters, digits, _ and - (they become subscription names)."
  }
}

variable "ack_deadline_seconds" {
  type        = map(number)
  description = "Function (transform, deliver, dead-letter-archive) -> ack deadline of its subscriptions: its timeout, so Pub/Sub never redelivers a message still being handled (capped at Pub/Sub's 600 s)."
  default     = { transform = 60, deliver = 120, "dead-letter-archive" = 60 }
}

variable "invoker_service_account" {
  type        = string
  description = "Service account the push subscriptions sign OIDC tokens as (it holds run.invoker on transform and deliver; the scheduler jobs use it too)."
}

variable "delivery" {
  type = object({
    max_delivery_attempts = number
    min_backoff_seconds   = number
    max_backoff_seconds   = number
  })
  description = "Retry and dead-letter policy of the transform and deliver-<id> subscriptions (push or pull)."
}

variable "publishers" {
  type        = map(list(string))
  description = "Topic (without prefix) -> IAM members allowed to publish to it."
  default     = {}
}

variable "record_tables" {
  type        = map(string)
  description = "Records topic (without prefix, e.g. records-outcomes) -> BigQuery table id project.dataset.table it is written to."
}

variable "dead_letter_table" {
  type        = string
  description = "BigQuery table id (project.dataset.table) that archives every dead-lettered message."
}

variable "kms_key_name" {
  type        = string
  description = "Cloud KMS key to encrypt the topics with, or null for Google-managed encryption."
  default     = null
}

variable "labels" {
  type        = map(string)
  description = "Labels for topics and subscriptions."
  default     = {}
}
