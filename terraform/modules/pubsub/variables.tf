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
  description = "Push subscription (transform, deliver, optionally dead-letter-archive) -> HTTPS URL of its function."

  validation {
    condition     = alltrue([for k, v in var.push_endpoints : contains(["transform", "deliver", "dead-letter-archive"], k) && startswith(v, "https://")])
    error_message = "push_endpoints: keys transform, deliver and optionally dead-letter-archive; values https:// URLs."
  }
}

variable "push_ack_deadline_seconds" {
  type        = map(number)
  description = "Push subscription -> ack deadline: set it to the function's timeout so Pub/Sub never redelivers a message still being handled."
  default     = { transform = 60, deliver = 120, "dead-letter-archive" = 60 }
}

variable "invoker_service_account" {
  type        = string
  description = "Service account the push subscriptions sign OIDC tokens as (it holds run.invoker on transform and deliver)."
}

variable "delivery" {
  type = object({
    max_delivery_attempts = number
    min_backoff_seconds   = number
    max_backoff_seconds   = number
  })
  description = "Retry and dead-letter policy of the push subscriptions."
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
