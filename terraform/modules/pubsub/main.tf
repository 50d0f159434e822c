# Topics and subscriptions, and the IAM Pub/Sub itself needs for them.
#
#   raw-hits          --transform------> transform function   dead-letter policy -> dead-letter
#   deliveries-<id>   --deliver-<id>---> deliver function     a topic and subscription per destination,
#                                                             each with its own retry and dead-letter
#                                                             policy (topics, not filtered subscriptions
#                                                             on one topic: Pub/Sub bills every
#                                                             subscription for the messages its filter
#                                                             drops, d² task deliveries per event)
#   records-*   --BigQuery subscr.-----> their table          dead-letter policy -> dead-letter
#   dead-letter --BigQuery subscr.-----> dead_letters table   (write_metadata: replayable)
#   dead-letter --push (OIDC)----------> archive function     optional: dead_lettered outcomes
#
# var.trigger: "push" makes the transform and deliver-<id> subscriptions push (OIDC) to their
# function; "schedule" makes them pull subscriptions that the functions drain when Cloud Scheduler
# calls them (modules/scheduler). The archive subscription pushes either way.
#
# Pub/Sub drops what is published to a topic without a subscription that takes it: the dead-letter
# topic always has its archive subscription, and every destination the config routes to must be in
# var.destinations (transform's publish to a missing deliveries-<id> topic fails, and its hits retry
# and dead-letter; make deploy checks the list first).
# The mirror of tagpipe.transport.base.TOPOLOGY with per_destination(TOPOLOGY, destinations).

locals {
  delivery_topics = [for d in var.destinations : "deliveries-${d}"] # tagpipe.transport.base.destination_topic
  pipeline_topics = concat(["raw-hits", "dead-letter"], local.delivery_topics)
  topics          = toset(concat(local.pipeline_topics, keys(var.record_tables)))

  # Subscription -> its topic and the function (stage) it feeds: the names of the Python topology
  # (deliver-<id> = tagpipe.transport.base.deliver_subscription).
  stages = merge(
    { transform = { topic = "raw-hits", stage = "transform" } },
    { for d in var.destinations : "deliver-${d}" => { topic = "deliveries-${d}", stage = "deliver" } },
  )
  archive = { for s in keys(var.push_endpoints) : s => { topic = "dead-letter", stage = s } if s == "dead-letter-archive" }

  # Every subscription that feeds a function, and which of them push (the rest are drained).
  feeds = merge(local.stages, local.archive)
  push  = var.trigger == "push" ? local.feeds : local.archive
  pull  = var.trigger == "schedule" ? local.stages : {}

  # Subscriptions with a dead-letter policy: the service agent must be allowed to pull from them
  # (to forward) and to publish to the dead-letter topic.
  dead_lettering = concat(
    [for s, f in local.feeds : "${var.prefix}-${s}" if f.topic != "dead-letter"],
    [for t in keys(var.record_tables) : "${var.prefix}-${t}-to-bigquery"],
  )

  # "deliveries" in var.publishers stands for every destination's deliveries topic
  publisher_grants = merge([
    for topic, members in var.publishers : merge([
      for t in(topic == "deliveries" ? local.delivery_topics : [topic]) : { for m in members : "${t}/${m}" => { topic = t, member = m } }
    ]...)
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

# The subscriptions that feed the functions: push (with OIDC) or pull (drained on a schedule).
resource "google_pubsub_subscription" "stage" {
  for_each = local.feeds

  project = var.project_id
  name    = "${var.prefix}-${each.key}"
  topic   = google_pubsub_topic.this[each.value.topic].id
  # push: the function's timeout, so Pub/Sub never redelivers a message still being handled;
  # pull: a drained batch is handled well within it too (Pub/Sub's maximum is 600 s)
  ack_deadline_seconds       = min(600, var.ack_deadline_seconds[each.value.stage])
  message_retention_duration = "604800s"
  labels                     = var.labels

  dynamic "push_config" {
    for_each = contains(keys(local.push), each.key) ? [var.push_endpoints[each.value.stage]] : []
    content {
      push_endpoint = push_config.value

      oidc_token {
        service_account_email = var.invoker_service_account
        audience              = push_config.value
      }
    }
  }

  retry_policy {
    minimum_backoff = "${var.delivery.min_backoff_seconds}s"
    maximum_backoff = "${var.delivery.max_backoff_seconds}s"
  }

  # Not on the dead-letter topic's own subscription: there is nowhere further to go (its messages
  # are in BigQuery already, and stay 7 days on the subscription).
  dynamic "dead_letter_policy" {
    for_each = each.value.topic == "dead-letter" ? [] : [1]
    content {
      dead_letter_topic     = google_pubsub_topic.this["dead-letter"].id
      max_delivery_attempts = var.delivery.max_delivery_attempts
    }
  }

  expiration_policy {
    ttl = "" # never expire, however quiet the site
  }
}

# Before per-destination subscriptions the resource was "push"; transform and the archive
# subscription keep their state. The old single "deliver" subscription is destroyed (docs/gcp.md,
# "Upgrading": let it drain first).
moved {
  from = google_pubsub_subscription.push
  to   = google_pubsub_subscription.stage
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

  depends_on = [google_pubsub_subscription.stage, google_pubsub_subscription.records]
}

# Mint the OIDC tokens of the push subscriptions as the invoker account (needed in projects made
# before 2021-04-08; harmless and scoped to that one account elsewhere). The archive subscription
# pushes in both trigger modes.
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
