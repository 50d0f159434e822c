variable "project_id" {
  type        = string
  description = "Project of the metrics, channels and alert policies."
}

variable "prefix" {
  type        = string
  description = "Name prefix of the stack being watched."
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
  description = "Thresholds and notification targets (see the root variable of the same name)."
  default     = {}
}

variable "slack_auth_token" {
  type        = string
  description = "Slack OAuth token for the Slack channel; null for no Slack channel."
  default     = null
  sensitive   = true
}

variable "services" {
  type        = map(string)
  description = "Function (collect, transform, deliver) -> Cloud Run service name."
}

variable "subscriptions" {
  type = object({
    stages  = map(string)
    archive = string
    records = list(string)
  })
  description = "Subscription names from the pubsub module: stages = every subscription a function consumes (pushed or drained, by the stage it feeds), archive = the dead-letter archive's, records = the BigQuery subscriptions."
}

variable "labels" {
  type        = map(string)
  description = "User labels for the notification channels and alert policies."
  default     = {}
}

variable "request_logs" {
  type = object({
    exclude          = optional(bool, true)
    keep_status_from = optional(number, 500)
  })
  description = "Exclude the functions' Cloud Run request logs from the _Default sink, keeping the entries with an HTTP status >= keep_status_from."
  default     = {}

  validation {
    condition     = var.request_logs.keep_status_from >= 100 && var.request_logs.keep_status_from <= 600
    error_message = "request_logs.keep_status_from must be an HTTP status between 100 and 600 (600 drops every request log)."
  }
}
