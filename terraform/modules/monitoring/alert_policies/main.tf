# One google_monitoring_alert_policy per entry of var.policies (written in ../main.tf).
# Provider reference: https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/monitoring_alert_policy
# Storm control by kind (API: projects.alertPolicies#AlertStrategy): notificationRateLimit is required for
# log-match policies and not implemented for the others; log-match policies notify on OPENED only.

resource "google_monitoring_alert_policy" "this" {
  for_each = var.policies

  project               = var.project_id
  display_name          = each.value.display_name
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = var.notification_channels
  user_labels           = merge(var.labels, { rule = each.value.rule })

  conditions {
    display_name = each.value.condition

    dynamic "condition_prometheus_query_language" {
      for_each = each.value.promql[*]
      content {
        query               = condition_prometheus_query_language.value.query
        duration            = condition_prometheus_query_language.value.duration
        evaluation_interval = "60s"
      }
    }

    dynamic "condition_matched_log" {
      for_each = each.value.log_match[*]
      content {
        filter           = condition_matched_log.value.filter
        label_extractors = condition_matched_log.value.label_extractors
      }
    }

    dynamic "condition_threshold" {
      for_each = each.value.threshold[*]
      content {
        filter                  = condition_threshold.value.filter
        denominator_filter      = condition_threshold.value.denominator_filter
        comparison              = condition_threshold.value.comparison
        threshold_value         = condition_threshold.value.threshold_value
        duration                = condition_threshold.value.duration
        evaluation_missing_data = condition_threshold.value.evaluation_missing_data

        aggregations {
          alignment_period     = condition_threshold.value.aggregations.alignment_period
          per_series_aligner   = condition_threshold.value.aggregations.per_series_aligner
          cross_series_reducer = condition_threshold.value.aggregations.cross_series_reducer
          group_by_fields      = condition_threshold.value.aggregations.group_by_fields
        }

        dynamic "denominator_aggregations" {
          for_each = condition_threshold.value.denominator_aggregations[*]
          content {
            alignment_period     = denominator_aggregations.value.alignment_period
            per_series_aligner   = denominator_aggregations.value.per_series_aligner
            cross_series_reducer = denominator_aggregations.value.cross_series_reducer
          }
        }
      }
    }

    dynamic "condition_absent" {
      for_each = each.value.absent[*]
      content {
        filter   = condition_absent.value.filter
        duration = condition_absent.value.duration

        aggregations {
          alignment_period     = condition_absent.value.aggregations.alignment_period
          per_series_aligner   = condition_absent.value.aggregations.per_series_aligner
          cross_series_reducer = condition_absent.value.aggregations.cross_series_reducer
        }
      }
    }
  }

  alert_strategy {
    auto_close           = var.auto_close
    notification_prompts = each.value.log_match == null ? ["OPENED", "CLOSED"] : null

    dynamic "notification_rate_limit" {
      for_each = each.value.log_match == null ? [] : [var.log_alert_rate_limit_seconds]
      content {
        period = "${notification_rate_limit.value}s"
      }
    }
  }

  documentation {
    subject   = each.value.subject
    mime_type = "text/markdown"
    content   = each.value.content

    dynamic "links" {
      for_each = each.value.links
      content {
        display_name = links.value.display_name
        url          = links.value.url
      }
    }
  }
}
