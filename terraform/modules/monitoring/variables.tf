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
    emails                     = optional(list(string), [])
    slack_channel              = optional(string)
    extra_channels             = optional(list(string), [])
    delivery_error_rate        = optional(number, 0.05)
    oldest_unacked_age_seconds = optional(number, 900)
    collect_5xx_rate           = optional(number, 0.01)
    traffic_silence_minutes    = optional(number, 60)
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
    push    = map(string)
    archive = string
    records = list(string)
  })
  description = "Subscription names from the pubsub module."
}

variable "labels" {
  type        = map(string)
  description = "User labels for the notification channels and alert policies."
  default     = {}
}
