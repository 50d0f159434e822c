output "ids" {
  description = "Alert policy ids by policy name."
  value       = { for name, policy in google_monitoring_alert_policy.this : name => policy.id }
}
