# What wakes someone up:
#   1. delivery error rate per destination      log-based metric on the `outcome_counts` log lines
#   2. something was dead-lettered              pubsub subscription/dead_letter_message_count > 0
#   3. the dead-letter archive is stuck         backlog of the archive subscription > 0 for 15 min
#   4. a stage is falling behind                oldest unacked message age on transform/deliver
#   5. collect answers 5xx                      Cloud Run request_count, 5xx share
#   6. traffic dropped to zero                  no collect requests at all for N minutes

locals {
  metric_name = "${var.prefix}_delivery_outcomes"

  slack_channels = var.alerting.slack_channel == null ? {} : { slack = var.alerting.slack_channel }

  channels = concat(
    [for c in google_monitoring_notification_channel.email : c.id],
    [for c in google_monitoring_notification_channel.slack : c.id],
    var.alerting.extra_channels,
  )

  push_subscriptions = join(" OR ", [for s in values(var.subscriptions.push) : "resource.label.subscription_id = \"${s}\""])
  all_subscriptions = join(" OR ", [
    for s in concat(values(var.subscriptions.push), var.subscriptions.records) : "resource.label.subscription_id = \"${s}\""
  ])
}

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.alerting.emails)

  project      = var.project_id
  display_name = "tagpipe alerts: ${each.value}"
  type         = "email"
  user_labels  = var.labels

  labels = {
    email_address = each.value
  }
}

resource "google_monitoring_notification_channel" "slack" {
  for_each = local.slack_channels

  project      = var.project_id
  display_name = "tagpipe alerts: Slack ${each.value}"
  type         = "slack"
  user_labels  = var.labels

  labels = {
    channel_name = each.value
  }

  sensitive_labels {
    auth_token = var.slack_auth_token
  }

  lifecycle {
    precondition {
      condition     = var.slack_auth_token != null
      error_message = "alerting.slack_channel is set but slack_auth_token is not: export TF_VAR_slack_auth_token=xoxb-... (or create the channel in the console and list its id in alerting.extra_channels)."
    }
  }
}

# The deliver (and transform, collect) stages log one `outcome_counts` line per batch and
# (destination, outcome, reason) with the number of events in `count` (shared/monitoring/logs.py).
# A distribution metric sums those counts, so the rate below is per event, not per log line.
resource "google_logging_metric" "outcomes" {
  project = var.project_id
  name    = local.metric_name
  filter  = <<-EOT
    resource.type="cloud_run_revision"
    resource.labels.service_name=("${join("\" OR \"", values(var.services))}")
    jsonPayload.message="outcome_counts"
  EOT

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "1"
    display_name = "tagpipe outcomes (events)"

    labels {
      key         = "destination"
      value_type  = "STRING"
      description = "Destination id, or * for hit-level outcomes."
    }

    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "delivered | filtered | rejected | dead_lettered"
    }
  }

  value_extractor = "EXTRACT(jsonPayload.count)"
  label_extractors = {
    destination = "EXTRACT(jsonPayload.destination)"
    outcome     = "EXTRACT(jsonPayload.outcome)"
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 16
      growth_factor      = 2
      scale              = 1
    }
  }
}

resource "google_monitoring_alert_policy" "delivery_error_rate" {
  project               = var.project_id
  display_name          = "tagpipe: delivery error rate per destination above ${var.alerting.delivery_error_rate * 100}%"
  combiner              = "OR"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "rejected + dead_lettered share of outcomes, per destination, over 15 min"

    condition_prometheus_query_language {
      query               = <<-EOT
        (
          sum by (destination) (increase(logging_googleapis_com:user_${local.metric_name}_sum{outcome=~"rejected|dead_lettered",destination!="*"}[15m]))
          /
          sum by (destination) (increase(logging_googleapis_com:user_${local.metric_name}_sum{destination!="*"}[15m]))
        ) > ${var.alerting.delivery_error_rate}
      EOT
      duration            = "300s"
      evaluation_interval = "60s"
    }
  }

  documentation {
    content   = "A destination is refusing events. Look at failed_events in BigQuery (error_code, message) for that destination, and at the deliver logs. Vendor tokens expire: check the secret."
    mime_type = "text/markdown"
  }

  depends_on = [google_logging_metric.outcomes]
}

resource "google_monitoring_alert_policy" "dead_lettered" {
  project               = var.project_id
  display_name          = "tagpipe: messages were dead-lettered"
  combiner              = "OR"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "dead_letter_message_count > 0"

    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND (${local.all_subscriptions})"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.subscription_id"]
      }
    }
  }

  documentation {
    content   = "Messages ran out of delivery attempts and were archived to the dead_letters table. Find them with `SELECT * FROM dead_letters WHERE publish_time > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)`, fix the cause, then replay (docs/gcp.md)."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "dead_letter_backlog" {
  project               = var.project_id
  display_name          = "tagpipe: dead-letter archive backlog"
  combiner              = "OR"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "undelivered messages on the dead-letter archive subscription > 0 for 15 min"

    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = \"${var.subscriptions.archive}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "900s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    content   = "Dead letters are not reaching BigQuery (table deleted, schema changed, permission removed). They are kept 7 days on the subscription: fix it before then."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "oldest_unacked" {
  project               = var.project_id
  display_name          = "tagpipe: a stage is falling behind"
  combiner              = "OR"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "oldest unacked message older than ${var.alerting.oldest_unacked_age_seconds} s"

    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND (${local.push_subscriptions})"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alerting.oldest_unacked_age_seconds
      duration        = "300s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    content   = "transform or deliver is not keeping up, or keeps failing (nacks) for some messages: look at the function's errors and max instances."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "collect_5xx" {
  project               = var.project_id
  display_name          = "tagpipe: collect 5xx above ${var.alerting.collect_5xx_rate * 100}%"
  combiner              = "OR"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "share of collect requests answered 5xx"

    condition_threshold {
      filter             = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${var.services["collect"]}\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\""
      denominator_filter = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${var.services["collect"]}\" AND metric.type = \"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alerting.collect_5xx_rate
      duration           = "300s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "collect answers 503 when it cannot publish to Pub/Sub (the tags retry). Check Pub/Sub status and the collect logs."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "traffic_silence" {
  project               = var.project_id
  display_name          = "tagpipe: no hits for ${var.alerting.traffic_silence_minutes} min"
  combiner              = "OR"
  notification_channels = local.channels
  user_labels           = var.labels

  conditions {
    display_name = "collect received no request"

    condition_absent {
      filter   = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${var.services["collect"]}\" AND metric.type = \"run.googleapis.com/request_count\""
      duration = "${var.alerting.traffic_silence_minutes * 60}s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "The site stopped sending hits: a tag was removed, the domain or DNS changed, or a consent banner blocks everything. Open the site and watch the network tab."
    mime_type = "text/markdown"
  }
}
