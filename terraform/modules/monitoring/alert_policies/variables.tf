variable "project_id" {
  description = "Project the alert policies are created in."
  type        = string
}

variable "labels" {
  description = "Labels for every policy; each also gets user_labels.rule from its entry."
  type        = map(string)
  default     = {}
}

variable "notification_channels" {
  description = "Notification channel ids every policy notifies (email, Slack, extra ones)."
  type        = list(string)
}

variable "auto_close" {
  description = "How long after its data stops an incident closes by itself, as a duration (\"86400s\")."
  type        = string
}

variable "log_alert_rate_limit_seconds" {
  description = "At most one notification per this many seconds from a log-match policy (the API requires a limit there)."
  type        = number
}

variable "policies" {
  description = <<-EOT
    Alert policies by name. Each has exactly one condition: promql (condition_prometheus_query_language),
    log_match (condition_matched_log: rate-limited, notifies when opened), threshold (condition_threshold) or
    absent (condition_absent). Metric conditions notify when an incident opens and when it closes.
  EOT
  type = map(object({
    display_name = string
    severity     = string
    rule         = string # user_labels.rule: the local alert rule the policy stands for, or "gcp_infrastructure"
    condition    = string # the condition's display name
    promql = optional(object({
      query    = string
      duration = string
    }))
    log_match = optional(object({
      filter           = string
      label_extractors = optional(map(string), {})
    }))
    threshold = optional(object({
      filter                  = string
      denominator_filter      = optional(string)
      comparison              = string
      threshold_value         = number
      duration                = string
      evaluation_missing_data = optional(string)
      aggregations = object({
        alignment_period     = string
        per_series_aligner   = string
        cross_series_reducer = optional(string)
        group_by_fields      = optional(list(string))
      })
      denominator_aggregations = optional(object({
        alignment_period     = string
        per_series_aligner   = string
        cross_series_reducer = optional(string)
      }))
    }))
    absent = optional(object({
      filter   = string
      duration = string
      aggregations = object({
        alignment_period     = string
        per_series_aligner   = string
        cross_series_reducer = optional(string)
      })
    }))
    subject = string
    content = string
    links = optional(list(object({
      display_name = string
      url          = string
    })), [])
  }))

  validation {
    condition     = alltrue([for p in values(var.policies) : length(compact([for c in [p.promql, p.log_match, p.threshold, p.absent] : c == null ? "" : "x"])) == 1])
    error_message = "Each alert policy needs exactly one of promql, log_match, threshold or absent."
  }

  validation {
    condition     = alltrue([for p in values(var.policies) : contains(["CRITICAL", "ERROR", "WARNING"], p.severity)])
    error_message = "severity is one of CRITICAL, ERROR, WARNING."
  }
}
