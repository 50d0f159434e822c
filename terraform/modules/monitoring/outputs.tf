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
  value = {
    for name, policy in {
      delivery_error_rate  = google_monitoring_alert_policy.delivery_error_rate
      credentials_refused  = google_monitoring_alert_policy.credentials_refused
      dead_lettered_events = google_monitoring_alert_policy.dead_lettered_events
      dead_lettered        = google_monitoring_alert_policy.dead_lettered
      dead_letter_backlog  = google_monitoring_alert_policy.dead_letter_backlog
      oldest_unacked       = google_monitoring_alert_policy.oldest_unacked
      traffic_silence      = google_monitoring_alert_policy.traffic_silence
      traffic_drop         = google_monitoring_alert_policy.traffic_drop
      collect_error_rate   = google_monitoring_alert_policy.collect_error_rate
      match_keys_drop      = google_monitoring_alert_policy.match_keys_drop
      collect_5xx          = google_monitoring_alert_policy.collect_5xx
    } : name => policy.id
  }
}
