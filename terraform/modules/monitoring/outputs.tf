output "notification_channels" {
  description = "Ids of the notification channels the policies use."
  value       = local.channels
}

output "outcome_metric" {
  description = "The log-based metric counting outcomes by destination, outcome and reason."
  value       = "logging.googleapis.com/user/${google_logging_metric.outcomes.name}"
}

output "match_key_metric" {
  description = "The log-based metric counting delivered events per destination and match key."
  value       = "logging.googleapis.com/user/${google_logging_metric.match_keys.name}"
}

output "alert_policies" {
  description = "Alert policy ids by policy name."
  value       = module.alert_policies.ids
}
