variable "project_id" {
  type        = string
  description = "Project of the dataset."
}

variable "prefix" {
  type        = string
  description = "Resource name prefix; the records topics are {prefix}-records-<table>."
}

variable "dataset_id" {
  type        = string
  description = "BigQuery dataset id (TAGPIPE_BQ_DATASET)."
  default     = "tagpipe"
}

variable "location" {
  type        = string
  description = "Dataset location (EU, US or a region)."
  default     = "EU"
}

variable "retention_days" {
  type        = map(number)
  description = "Partition expiry in days per table, over local.default_retention_days; 0 keeps partitions forever."
  default     = {}

  validation {
    condition     = alltrue([for t in keys(var.retention_days) : contains(["raw_hits", "events", "outcomes", "failed_events", "traces", "dead_letters"], t)])
    error_message = "retention_days keys are table names: raw_hits, events, outcomes, failed_events, traces, dead_letters."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to destroy the tables (and keep their data on `terraform destroy`)."
  default     = true
}

variable "kms_key_name" {
  type        = string
  description = "Cloud KMS key for customer-managed encryption of the dataset, or null."
  default     = null
}

variable "pubsub_service_agent" {
  type        = string
  description = "Email of the project's Pub/Sub service agent, which writes the BigQuery subscriptions."
}

variable "labels" {
  type        = map(string)
  description = "Labels for the dataset and tables."
  default     = {}
}
