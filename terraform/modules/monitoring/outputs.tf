output "notification_channels" {
  description = "Ids of the notification channels the policies use."
  value       = local.channels
}

output "outcome_metric" {
  description = "The log-based metric counting outcomes by destination and outcome."
  value       = "logging.googleapis.com/user/${google_logging_metric.outcomes.name}"
}
