output "topics" {
  description = "Topic (without prefix) -> full topic id."
  value       = { for t in local.topics : t => google_pubsub_topic.this[t].id }
}

output "subscription_names" {
  description = "Subscription names by role: push (transform, deliver), archive (dead letters), records (BigQuery)."
  value = {
    push    = { for s in keys(local.push) : s => google_pubsub_subscription.push[s].name }
    archive = google_pubsub_subscription.dead_letter_archive.name
    records = [for t in keys(var.record_tables) : google_pubsub_subscription.records[t].name]
  }
}
