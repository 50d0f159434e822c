# Topics and subscriptions, and the IAM Pub/Sub itself needs for them.
#
#   raw-hits    --push (OIDC)-------> transform function    dead-letter policy -> dead-letter
#   deliveries  --push (OIDC)-------> deliver function      dead-letter policy -> dead-letter
#   records-*   --BigQuery subscr.--> their table           dead-letter policy -> dead-letter
#   dead-letter --BigQuery subscr.--> dead_letters table    (write_metadata: replayable)
#   dead-letter --push (OIDC)-------> archive function      optional: dead_lettered outcomes
#
# Pub/Sub drops what is published to a topic without subscriptions: the dead-letter topic always
# has its archive subscription. The mirror of shared.transport.base.TOPOLOGY.

locals {
  pipeline_topics = ["raw-hits", "deliveries", "dead-letter"]
  topics          = toset(concat(local.pipeline_topics, keys(var.record_tables)))

  # Push subscription -> its topic, for the functions that exist (the names of the Python topology).
  push_topics = {
    transform             = "raw-hits"
    deliver               = "deliveries"
    "dead-letter-archive" = "dead-letter"
  }
  push = { for s in keys(var.push_endpoints) : s => local.push_topics[s] }

  # Subscriptions with a dead-letter policy: the service agent must be allowed to pull from them
  # (to forward) and to publish to the dead-letter topic.
  dead_lettering = concat(
    [for s in keys(local.push) : "${var.prefix}-${s}" if local.push[s] != "dead-letter"],
    [for t in keys(var.record_tables) : "${var.prefix}-${t}-to-bigquery"],
  )

  publisher_grants = merge([
    for topic, members in var.publishers : { for m in members : "${topic}/${m}" => { topic = topic, member = m } }
  ]...)
}

resource "google_pubsub_topic" "this" {
  #checkov:skip=CKV_GCP_83:CMEK is optional (var.kms_key_name); Google-managed encryption by default.
  for_each = local.topics

  project                    = var.project_id
  name                       = "${var.prefix}-${each.key}"
  kms_key_name               = var.kms_key_name
  message_retention_duration = each.key == "dead-letter" ? "604800s" : null
  labels                     = var.labels
}

resource "google_pubsub_subscription" "push" {
  for_each = local.push

  project                    = var.project_id
  name                       = "${var.prefix}-${each.key}"
  topic                      = google_pubsub_topic.this[each.value].id
  ack_deadline_seconds       = var.push_ack_deadline_seconds[each.key]
  message_retention_duration = "604800s"
  labels                     = var.labels

  push_config {
    push_endpoint = var.push_endpoints[each.key]

    oidc_token {
      service_account_email = var.invoker_service_account
      audience              = var.push_endpoints[each.key]
    }
  }

  retry_policy {
    minimum_backoff = "${var.delivery.min_backoff_seconds}s"
    maximum_backoff = "${var.delivery.max_backoff_seconds}s"
  }

  # Not on the dead-letter topic's own subscription: there is nowhere further to go (its messages
  # are in BigQuery already, and stay 7 days on the subscription).
  dynamic "dead_letter_policy" {
    for_each = each.value == "dead-letter" ? [] : [1]
    content {
      dead_letter_topic     = google_pubsub_topic.this["dead-letter"].id
      max_delivery_attempts = var.delivery.max_delivery_attempts
    }
  }

  expiration_policy {
    ttl = "" # never expire, however quiet the site
  }
}

resource "google_pubsub_subscription" "records" {
  for_each = var.record_tables

  project                    = var.project_id
  name                       = "${var.prefix}-${each.key}-to-bigquery"
  topic                      = google_pubsub_topic.this[each.key].id
  message_retention_duration = "604800s"
  labels                     = var.labels

  bigquery_config {
    table               = each.value
    use_table_schema    = true
    drop_unknown_fields = false # a row that does not fit goes to dead_letters, never silently shortened
    write_metadata      = false
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.this["dead-letter"].id
    max_delivery_attempts = 5
  }

  expiration_policy {
    ttl = ""
  }
}

# The subscription on the dead-letter topic: every dead letter, as it was, with its attributes
# (CloudPubSubDeadLetterSourceSubscription, ...DeliveryCount), into BigQuery for replay.
resource "google_pubsub_subscription" "dead_letter_archive" {
  project                    = var.project_id
  name                       = "${var.prefix}-dead-letter-to-bigquery"
  topic                      = google_pubsub_topic.this["dead-letter"].id
  message_retention_duration = "604800s"
  labels                     = var.labels

  bigquery_config {
    table            = var.dead_letter_table
    use_table_schema = false
    write_metadata   = true # subscription_name, message_id, publish_time, data, attributes
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }
}

# --- IAM that Pub/Sub's own service agent needs ----------------------------------------------

# Forward dead letters: publish to the dead-letter topic ...
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.this["dead-letter"].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.pubsub_service_agent}"
}

# ... and acknowledge the forwarded message on its source subscription.
resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = toset(local.dead_lettering)

  project      = var.project_id
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"

  depends_on = [google_pubsub_subscription.push, google_pubsub_subscription.records]
}

# Mint the OIDC tokens of the push subscriptions as the invoker account (needed in projects made
# before 2021-04-08; harmless and scoped to that one account elsewhere).
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = "projects/${var.project_id}/serviceAccounts/${var.invoker_service_account}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.pubsub_service_agent}"
}

# --- who may publish where -------------------------------------------------------------------

resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = local.publisher_grants

  project = var.project_id
  topic   = google_pubsub_topic.this[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = each.value.member
}
