output "topics" {
  description = "Topic (without prefix) -> full topic id."
  value       = { for t in local.topics : t => google_pubsub_topic.this[t].id }
}

output "subscription_names" {
  description = "Subscription names by role: stages (transform, deliver-<id>: push or drained), push (those of them and the archive one that push), archive (dead letters to BigQuery), records (BigQuery)."
  value = {
    stages  = { for s in keys(local.feeds) : s => google_pubsub_subscription.stage[s].name }
    push    = { for s in keys(local.push) : s => google_pubsub_subscription.stage[s].name }
    archive = google_pubsub_subscription.dead_letter_archive.name
    records = [for t in keys(var.record_tables) : google_pubsub_subscription.records[t].name]
  }
}

output "pull_subscriptions" {
  description = "Subscription -> full id of the ones the functions drain (trigger = schedule), for the scheduler jobs."
  value       = { for s in keys(local.pull) : s => google_pubsub_subscription.stage[s].id }
}
