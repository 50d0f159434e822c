variable "project_id" {
  type        = string
  description = "Project of the functions."
}

variable "region" {
  type        = string
  description = "Region of the functions."
}

variable "prefix" {
  type        = string
  description = "Name prefix: functions are {prefix}-collect, {prefix}-transform, {prefix}-deliver."
}

variable "python_runtime" {
  type        = string
  description = "Cloud Functions Python runtime id (python311, python312, ...)."
  default     = "python312"
}

variable "source_dir" {
  type        = string
  description = "Absolute folder holding collect.zip, transform.zip and deliver.zip from scripts/package.sh."
}

variable "sizing" {
  type = map(object({
    memory        = string
    cpu           = string
    concurrency   = number
    min_instances = number
    max_instances = number
    timeout       = number
  }))
  description = "Per function (collect, transform, deliver, and archive when enabled): memory, vCPU, requests per instance, instance bounds and request timeout in seconds."

  validation {
    condition     = alltrue([for f in ["collect", "transform", "deliver"] : contains(keys(var.sizing), f)])
    error_message = "sizing needs collect, transform and deliver."
  }

  validation {
    condition     = alltrue([for s in values(var.sizing) : s.concurrency == 1 || tonumber(s.cpu) >= 1])
    error_message = "Concurrency above 1 needs at least 1 vCPU (a Cloud Run rule)."
  }
}

variable "archive" {
  type        = bool
  description = "Also deploy the dead-letter archive function ({prefix}-archive from functions/archive/main.py)."
  default     = false
}

variable "dataset_id" {
  type        = string
  description = "BigQuery dataset (TAGPIPE_BQ_DATASET)."
}

variable "firestore_database" {
  type        = string
  description = "Firestore database of the idempotency keys (TAGPIPE_FIRESTORE_DATABASE)."
}

variable "dedup_ttl_days" {
  type        = number
  description = "Days a delivered dedup key is kept (TAGPIPE_DEDUP_TTL_DAYS)."
  default     = 35
}

variable "secrets" {
  type = map(object({
    secret_id = string
    functions = list(string)
  }))
  description = "Environment variable name -> Secret Manager secret id and the functions that get it."
  default     = {}
}

variable "labels" {
  type        = map(string)
  description = "Labels for the functions, service accounts' bucket and objects."
  default     = {}
}
