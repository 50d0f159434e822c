# The local stack's alert rules (docs/monitoring.md, shared/tagpipe/monitoring/alerts.py) as Cloud Monitoring
# alert policies. Every policy carries user_labels.rule = the local rule type it stands for (or
# "gcp_infrastructure" for what only exists on GCP); tests/terraform checks each local rule has one.
#
#   local rule              policy                      source
#   delivery_failure_rate   delivery_error_rate         log-based metric on `outcome_counts` (per destination)
#                           credentials_refused         the `outcome_counts` log lines themselves (log match)
#   dead_letters            dead_lettered_events        log-based metric, outcome dead_lettered (per destination)
#                           dead_lettered               pubsub subscription/dead_letter_message_count > 0
#   backlog_age             oldest_unacked              pubsub subscription/oldest_unacked_message_age
#   traffic_drop            traffic_silence             no collect request at all for N minutes (condition_absent)
#                           traffic_drop                collect requests below X% of the same window last week
#   collect_error_rate      collect_error_rate          collect 4xx (Cloud Run request_count) + hit-level rejections
#   match_keys_drop         match_keys_drop             log-based metric on `match_key_counts` / delivered outcomes
#   (GCP only)              dead_letter_backlog, collect_5xx
#
# Provider reference (hashicorp/google ~> 6.14), resource google_monitoring_alert_policy:
#   https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/monitoring_alert_policy
#   condition_prometheus_query_language { query, duration, evaluation_interval }, condition_matched_log
#   { filter, label_extractors }, documentation { subject, content, mime_type, links { display_name, url } }
#   (subject/links: provider >= 5.x), severity, alert_strategy { auto_close, notification_prompts (>= 6.11),
#   notification_rate_limit { period } }.
# API semantics: https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies#AlertStrategy
#   notificationRateLimit is "required for log-based alerting policies" (a LogMatch condition) and "not
#   implemented" for the others; notificationPrompts is always [OPENED] for log-based policies, and
#   [OPENED] or [OPENED, CLOSED] for the others.
#
# No alert storms (the local stack's rules, docs/monitoring.md "No alert storms"), on GCP:
#   - a metric policy opens ONE incident per (policy, time series: a destination, a subscription, the
#     site) and notifies when it opens and when it closes (notification_prompts OPENED + CLOSED: the
#     local "Resolved" message); nothing is re-sent while it stays open (no renotify_interval);
#   - `duration` makes a condition hold for minutes before it opens anything (no flapping);
#   - auto_close closes incidents whose data stopped (alerting.auto_close_hours);
#   - the one log-match policy (credentials_refused) is rate-limited (alerting.log_alert_rate_limit_minutes;
#     Cloud Monitoring itself caps log-based policies at 1 notification / 5 min and 20 a day:
#     https://cloud.google.com/monitoring/alerts/incidents-events).
#
# PromQL names (https://cloud.google.com/monitoring/promql/promql-mapping): the first "/" becomes ":",
# other special characters "_"; a DISTRIBUTION metric is read as a histogram (_sum, _count, _bucket);
# log-based metrics can map to several resource types, so every selector names
# monitored_resource="cloud_run_revision" (gen2 functions run, and log, as Cloud Run revisions).

locals {
  metric_name     = "${var.prefix}_delivery_outcomes"
  key_metric_name = "${var.prefix}_match_keys"

  slack_channels = var.alerting.slack_channel == null ? {} : { slack = var.alerting.slack_channel }

  # Every policy notifies all of these: the email channels, the Slack channel and any channel made
  # elsewhere (check "alerts_reach_email_and_slack" below warns when email or Slack is missing).
  channels = concat(
    [for c in google_monitoring_notification_channel.email : c.id],
    [for c in google_monitoring_notification_channel.slack : c.id],
    var.alerting.extra_channels,
  )

  stage_subscriptions = join(" OR ", [for s in values(var.subscriptions.stages) : "resource.label.subscription_id = \"${s}\""])
  all_subscriptions = join(" OR ", [
    for s in concat(values(var.subscriptions.stages), var.subscriptions.records) : "resource.label.subscription_id = \"${s}\""
  ])

  # Cloud Logging filter for the lines the functions write (shared/tagpipe/monitoring/logs.py), and the
  # PromQL series of the two log-based metrics and of collect's request count.
  function_logs = <<-EOT
    resource.type="cloud_run_revision"
    resource.labels.service_name=("${join("\" OR \"", values(var.services))}")
  EOT
  outcomes      = "logging_googleapis_com:user_${local.metric_name}_sum"
  match_keys    = "logging_googleapis_com:user_${local.key_metric_name}_sum"
  run           = "monitored_resource=\"cloud_run_revision\""
  requests      = "run_googleapis_com:request_count{${local.run},service_name=\"${var.services["collect"]}\""
  # collect's 404 (no such endpoint), 405 (wrong method) and 403 (CORS origin) are not hits the
  # local rule counts (shared/tagpipe/pipeline/collect.py records only InvalidInput: 400, 401, 413, 414, 429).
  not_hits = "response_code!~\"403|404|405\""

  auto_close = "${floor(var.alerting.auto_close_hours * 3600)}s"

  # The collect error rate: collect's 4xx answers plus hits transform could not read (hit-level
  # `rejected` outcomes, destination "*"), over the requests that were hits. Collect itself does not
  # log outcome_counts for the hits it refuses (it records them in the store), so its share comes
  # from Cloud Run's request_count.
  collect_window = "[15m]"
  collect_4xx    = "sum(increase(${local.requests},response_code_class=\"4xx\",${local.not_hits}}${local.collect_window}))"
  collect_unread = "sum(increase(${local.outcomes}{${local.run},destination=\"*\",outcome=\"rejected\"}${local.collect_window}))"
  collect_total  = "sum(increase(${local.requests},${local.not_hits}}${local.collect_window}))"

  # Traffic: hits accepted (2xx) in the window, and the same window one week earlier.
  traffic_window = "${var.alerting.traffic_window_minutes}m"
  traffic_now    = "sum(increase(${local.requests},response_code_class=\"2xx\"}[${local.traffic_window}]))"
  traffic_before = "sum(increase(${local.requests},response_code_class=\"2xx\"}[${local.traffic_window}] offset 1w))"

  # Match keys: the share of delivered events carrying each key, now (the window) and over the
  # baseline days before the window, per destination and key (the local rule's MatchKeysRule).
  mk_keys     = join("|", var.alerting.match_keys)
  mk_now      = "[${var.alerting.match_keys_window_minutes}m]"
  mk_was      = "[${var.alerting.match_keys_baseline_days}d] offset ${var.alerting.match_keys_window_minutes}m"
  mk_sel      = "{${local.run},key=~\"${local.mk_keys}\"}"
  delivered   = "{${local.run},outcome=\"delivered\",destination!=\"*\"}"
  mk_keys_now = "sum by (destination, key) (increase(${local.match_keys}${local.mk_sel}${local.mk_now}))"
  mk_keys_was = "sum by (destination, key) (increase(${local.match_keys}${local.mk_sel}${local.mk_was}))"
  mk_dlv_now  = "sum by (destination) (increase(${local.outcomes}${local.delivered}${local.mk_now}))"
  mk_dlv_was  = "sum by (destination) (increase(${local.outcomes}${local.delivered}${local.mk_was}))"
  # the local rules' no-verdict case: too few delivered events in the window or the baseline
  mk_enough_events = "and on (destination) ${local.mk_dlv_now} >= ${var.alerting.match_keys_min_events} and on (destination) ${local.mk_dlv_was} >= ${var.alerting.match_keys_min_events}"
  # a key that vanished entirely has no series now: "or 0 * baseline" makes its share 0, not absent
  mk_share_now = "((${local.mk_keys_now} or 0 * ${local.mk_keys_was}) / on (destination) group_left ${local.mk_dlv_now})"
  mk_share_was = "(${local.mk_keys_was} / on (destination) group_left ${local.mk_dlv_was})"

  # Estimated match quality (the local MatchQualityRule, shared/tagpipe/monitoring/match_quality.py): the
  # weighted sum of the key shares, with the weights the Python reads (match_quality.json), per destination.
  # A key with no series contributes 0 ("or 0 * delivered"), so every destination with deliveries scores.
  mq_weights = jsondecode(file("${path.module}/../../../shared/tagpipe/monitoring/match_quality.json")).weights
  mq_score_now = join(" + on (destination) ", [for key, weight in local.mq_weights :
    "(${weight} * sum by (destination) (increase(${local.match_keys}{${local.run},key=\"${key}\"}${local.mk_now})) / on (destination) ${local.mk_dlv_now} or on (destination) 0 * ${local.mk_dlv_now})"
  ])
  mq_score_was = join(" + on (destination) ", [for key, weight in local.mq_weights :
    "(${weight} * sum by (destination) (increase(${local.match_keys}{${local.run},key=\"${key}\"}${local.mk_was})) / on (destination) ${local.mk_dlv_was} or on (destination) 0 * ${local.mk_dlv_was})"
  ])

  # Reason codes that mean "the destination refused our credentials": renewing a token fixes them, then the
  # dead letters are replayed. The registry of reason codes (shared/tagpipe/reasons.json, read by the code
  # too) marks them `credentials`.
  reason_registry    = jsondecode(file("${path.module}/../../../shared/tagpipe/reasons.json"))
  credential_reasons = sort([for code, reason in local.reason_registry.codes : code if try(reason.credentials, false)])

  # urlencode() writes spaces as "+"; %20 is the safe form inside the console's ;query= parameter
  logs_query = "https://console.cloud.google.com/logs/query;query=${replace(urlencode("jsonPayload.message=\"outcome_counts\"\njsonPayload.outcome=(\"rejected\" OR \"dead_lettered\")"), "+", "%20")}?project=${var.project_id}"
}

check "alerts_reach_email_and_slack" {
  assert {
    condition     = length(var.alerting.emails) > 0 && (var.alerting.slack_channel != null || length(var.alerting.extra_channels) > 0)
    error_message = "Alert policies should notify by email and on Slack: set alerting.emails and alerting.slack_channel (with TF_VAR_slack_auth_token), or list a Slack channel made in the console in alerting.extra_channels. Until then alerts reach only the channels that exist (or none)."
  }
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

# --------------------------------------------------------------------------- log-based metrics
# Provider: https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/logging_metric
# (filter, metric_descriptor { metric_kind, value_type, labels { key, value_type } }, value_extractor,
# label_extractors, bucket_options). Every label in metric_descriptor needs an extractor; labels can be
# added later but never removed or renamed, at most 10 per metric, about 30,000 active series per
# metric (https://cloud.google.com/logging/docs/logs-based-metrics/labels). The values are codes
# (destination ids, outcomes, reason codes, match-key names), never customer data.

# The deliver (and transform, archive) stages log one `outcome_counts` line per batch and
# (destination, outcome, reason) with the number of events in `count` (shared/tagpipe/monitoring/logs.py).
# A DISTRIBUTION metric with value_extractor = count sums those counts, so the rates below are per
# event, not per log line (PromQL reads the sum as <metric>_sum).
resource "google_logging_metric" "outcomes" {
  project = var.project_id
  name    = local.metric_name
  filter  = <<-EOT
    ${local.function_logs}
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

    labels {
      key         = "reason"
      value_type  = "STRING"
      description = "Reason code (meta:190, http:503, consent, invalid_json, ...; shared/tagpipe/reasons.json)."
    }
  }

  value_extractor = "EXTRACT(jsonPayload.count)"
  label_extractors = {
    destination = "EXTRACT(jsonPayload.destination)"
    outcome     = "EXTRACT(jsonPayload.outcome)"
    reason      = "EXTRACT(jsonPayload.reason)"
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 16
      growth_factor      = 2
      scale              = 1
    }
  }
}

# deliver logs one `match_key_counts` line per batch and (destination, key): how many delivered
# events carried that match key (em, ph, fbp, fbc, ...). Divided by the delivered outcomes of the
# same destination it is the share the dashboard's match-key card shows.
resource "google_logging_metric" "match_keys" {
  project = var.project_id
  name    = local.key_metric_name
  filter  = <<-EOT
    ${local.function_logs}
    jsonPayload.message="match_key_counts"
  EOT

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "1"
    display_name = "tagpipe delivered events carrying a match key"

    labels {
      key         = "destination"
      value_type  = "STRING"
      description = "Destination id."
    }

    labels {
      key         = "key"
      value_type  = "STRING"
      description = "Match key name: em, ph, fbp, fbc, external_id, ... (never its value)."
    }
  }

  value_extractor = "EXTRACT(jsonPayload.count)"
  label_extractors = {
    destination = "EXTRACT(jsonPayload.destination)"
    key         = "EXTRACT(jsonPayload.key)"
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 16
      growth_factor      = 2
      scale              = 1
    }
  }
}

# --------------------------------------------------------------------------- alert policies
# One entry per policy, rendered by ./alert_policies (one google_monitoring_alert_policy for_each over
# this map, typed there). `rule` is the local rule the policy stands for (user_labels.rule); the
# condition is one of promql, log_match (a log-match policy: rate-limited, notifies on open only),
# threshold or absent; subject and content are what the notification says.

locals {
  alert_policies = {
    # --------------------------------------------------------------------------- delivery_failure_rate
    delivery_error_rate = {
      display_name = "tagpipe: deliveries failing (above ${var.alerting.delivery_error_rate * 100}%)"
      severity     = "WARNING"
      rule         = "delivery_failure_rate"
      condition    = "rejected + dead_lettered share of a destination's outcomes (filtered ones left out), 15 min, at least ${var.alerting.delivery_min_events} events"
      # Filtered outcomes (consent, duplicates) are on purpose: the local rule leaves them out of the
      # denominator too.
      promql = {
        query    = <<-EOT
          (
            sum by (destination) (increase(${local.outcomes}{${local.run},destination!="*",outcome=~"rejected|dead_lettered"}[15m]))
            /
            sum by (destination) (increase(${local.outcomes}{${local.run},destination!="*",outcome=~"delivered|rejected|dead_lettered"}[15m]))
          ) > ${var.alerting.delivery_error_rate}
          and
          sum by (destination) (increase(${local.outcomes}{${local.run},destination!="*",outcome=~"delivered|rejected|dead_lettered"}[15m])) >= ${var.alerting.delivery_min_events}
        EOT
        duration = "300s"
      }
      subject = "tagpipe: a destination is refusing events"
      content = <<-EOT
      **What broke:** more than ${var.alerting.delivery_error_rate * 100}% of the events sent to **$${metric.label.destination}** in the last 15 minutes failed (refused by the platform, or given up after retries).

      **What it means:** those conversions are not reaching that ad platform right now, so its reports and ad optimisation miss them. They are **not lost**: failed events are kept and can be sent again once the cause is fixed.

      **What to do:**
      1. Look at the reason (link below: "Why events failed"). The most common ones:
         - *the access token expired* (meta:190, google_ads:oauth_token_expired, http:401): renew the token in the platform (Meta: Events Manager → your dataset → Settings → Conversions API → Generate access token) and hand it to whoever runs tagpipe. A separate "credentials refused" alert names it too.
         - *the platform's servers were failing* (http:5xx, timeout, network): nothing to do; it usually passes. If it lasts, the "stage is falling behind" alert follows.
         - *the platform refused a parameter* (meta:100, http:400): a mapping or config change; ask whoever changed the tags or tagpipe.toml.
      2. Once fixed, replay the failed events (engineers: `tagpipe replay --since 1d`, which reads BigQuery on GCP: docs/replay.md).

      **For engineers:** `outcome_counts` log lines with outcome rejected / dead_lettered for that destination carry the reason code; `failed_events` in BigQuery has the detail (error_code, message). This alert closes by itself when the share is back under the threshold.
      EOT
      links = [
        { display_name = "Why events failed (logs)", url = local.logs_query },
      ]
    }

    # The GCP counterpart of the local message's reason ("the access token expired (meta:190)"): the
    # metric policies above cannot name a reason, a log match can (${log.extracted_label.*}).
    credentials_refused = {
      display_name = "tagpipe: a platform refused our credentials"
      severity     = "CRITICAL"
      rule         = "delivery_failure_rate"
      condition    = "outcome_counts with a credentials reason code"
      log_match = {
        filter = <<-EOT
          ${local.function_logs}
          jsonPayload.message="outcome_counts"
          jsonPayload.outcome=("rejected" OR "dead_lettered")
          jsonPayload.reason=("${join("\" OR \"", local.credential_reasons)}")
        EOT
        label_extractors = {
          destination = "EXTRACT(jsonPayload.destination)"
          reason      = "EXTRACT(jsonPayload.reason)"
        }
      }
      subject = "tagpipe: $${log.extracted_label.destination} refused our credentials ($${log.extracted_label.reason})"
      content = <<-EOT
      **What broke:** **$${log.extracted_label.destination}** refused tagpipe's credentials (reason `$${log.extracted_label.reason}`): the access token or API secret expired, was revoked, or lost its permission.

      **What it means:** every event for that platform fails until the credentials are renewed. Nothing is lost: the events are kept as dead letters and can be sent again.

      **What to do:**
      1. Renew the credential in the platform:
         - Meta (meta:190, meta:102, meta:10): Events Manager → your dataset (pixel) → Settings → Conversions API → *Generate access token* (the token's system user needs access to the pixel).
         - Google Ads (google_ads:*): sign in again to get a new refresh token.
         - GA4 (http:401/403): Admin → Data streams → your stream → Measurement Protocol API secrets → create a new secret.
         - TikTok (http:401): Events Manager → your pixel → Settings → *Generate access token*.
      2. Hand it to whoever runs tagpipe. They store it as a new secret version (never in a file):
         `printf %s "$NEW_VALUE" | gcloud secrets versions add ${var.prefix}-META_ACCESS_TOKEN --project ${var.project_id} --data-file=-`
         (or ${var.prefix}-GOOGLE_ADS_REFRESH_TOKEN, ${var.prefix}-GA4_API_SECRET, ${var.prefix}-TIKTOK_ACCESS_TOKEN, ${var.prefix}-TAGPIPE_WEBHOOK_SECRET). Functions read secrets when an instance starts: start new deliver instances (deploy a new revision) so the new value is used.
      3. Replay the events that failed meanwhile (engineers: `tagpipe replay --since 1d`, which reads BigQuery on GCP: docs/replay.md). Events already delivered are never sent twice.

      This notification repeats at most every ${var.alerting.log_alert_rate_limit_minutes} minutes while the platform keeps refusing.
      EOT
      links = [
        { display_name = "Failed deliveries (logs)", url = local.logs_query },
      ]
    }

    # --------------------------------------------------------------------------- dead_letters

    # deliver dead-letters events itself (publishes to the dead-letter topic when a vendor refuses the
    # whole call or the retries run out), which Pub/Sub's dead_letter_message_count never sees: the
    # outcomes are the complete count, per destination ("*" = hits transform could not process).
    dead_lettered_events = {
      display_name = "tagpipe: events were dead-lettered"
      severity     = "CRITICAL"
      rule         = "dead_letters"
      condition    = "dead_lettered outcomes in the last 15 min, per destination"
      promql = {
        query    = <<-EOT
          sum by (destination) (increase(${local.outcomes}{${local.run},outcome="dead_lettered"}[15m])) > 0
        EOT
        duration = "0s"
      }
      subject = "tagpipe: events for a destination could not be delivered"
      content = <<-EOT
      **What broke:** events for **$${metric.label.destination}** were given up on in the last 15 minutes ("*" means hits that could not be read at all): the platform refused the whole request, or kept failing until the retries ran out.

      **What it means:** those events have not reached the platform. They are **kept** (BigQuery table `dead_letters`) and can be sent again once the cause is fixed.

      **What to do:** find the cause in the "deliveries failing" or "credentials refused" alert that usually comes with this one (an expired token: renew it), then have the events replayed (engineers: `tagpipe replay --since 1d`, which reads BigQuery on GCP: docs/replay.md).

      **For engineers:** `SELECT * FROM dead_letters WHERE publish_time > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)`; the reason is in the message attributes and in `failed_events`.
      EOT
    }

    dead_lettered = {
      display_name = "tagpipe: Pub/Sub dead-lettered messages"
      severity     = "CRITICAL"
      rule         = "dead_letters"
      condition    = "dead_letter_message_count > 0"
      threshold = {
        # no dead letters reported in the period: the condition is met no longer, the incident closes
        filter                  = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND (${local.all_subscriptions})"
        comparison              = "COMPARISON_GT"
        threshold_value         = 0
        duration                = "0s"
        evaluation_missing_data = "EVALUATION_MISSING_DATA_INACTIVE"
        aggregations = {
          alignment_period     = "300s"
          per_series_aligner   = "ALIGN_SUM"
          cross_series_reducer = "REDUCE_SUM"
          group_by_fields      = ["resource.label.subscription_id"]
        }
      }
      subject = "tagpipe: messages ran out of delivery attempts"
      content = <<-EOT
      **What broke:** Pub/Sub gave up on messages of **$${resource.label.subscription_id}** after every delivery attempt failed: a stage kept crashing on them, or BigQuery refused rows (a `*-to-bigquery` subscription).

      **What it means:** the messages are kept in the BigQuery table `dead_letters`; nothing is lost, but those events are not processed until they are replayed.

      **What to do (engineers):** `SELECT * FROM dead_letters WHERE publish_time > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR)`, read the function's errors for the cause, fix it, then replay (`tagpipe replay`, docs/replay.md).
      EOT
    }

    dead_letter_backlog = {
      display_name = "tagpipe: dead-letter archive backlog"
      severity     = "ERROR"
      rule         = "gcp_infrastructure"
      condition    = "undelivered messages on the dead-letter archive subscription > 0 for 15 min"
      threshold = {
        filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id = \"${var.subscriptions.archive}\""
        comparison      = "COMPARISON_GT"
        threshold_value = 0
        duration        = "900s"
        aggregations = {
          alignment_period   = "60s"
          per_series_aligner = "ALIGN_MAX"
        }
      }
      subject = "tagpipe: dead letters are not reaching BigQuery"
      content = <<-EOT
      **What broke:** failed events are piling up instead of being archived in BigQuery (table deleted, schema changed, permission removed).

      **What it means:** nothing is lost yet: Pub/Sub keeps them 7 days. After that they are gone.

      **What to do (engineers):** check the `${var.subscriptions.archive}` subscription's errors and the `dead_letters` table, fix it within the 7 days (`make deploy` recreates what Terraform owns).
      EOT
    }

    # --------------------------------------------------------------------------- backlog_age
    oldest_unacked = {
      display_name = "tagpipe: a stage is falling behind"
      severity     = "WARNING"
      rule         = "backlog_age"
      condition    = "oldest unacked message older than ${var.alerting.oldest_unacked_age_seconds} s"
      threshold = {
        filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND (${local.stage_subscriptions})"
        comparison      = "COMPARISON_GT"
        threshold_value = var.alerting.oldest_unacked_age_seconds
        duration        = "300s"
        aggregations = {
          alignment_period   = "60s"
          per_series_aligner = "ALIGN_MAX"
        }
      }
      subject = "tagpipe: deliveries are waiting"
      content = <<-EOT
      **What broke:** events have been waiting more than ${floor(var.alerting.oldest_unacked_age_seconds / 60)} minutes in **$${resource.label.subscription_id}**: a platform is answering slowly or failing (it is retried), or tagpipe is not keeping up.

      **What it means:** conversions reach the platforms late. They are kept and sent as soon as the platform answers; after the last retry they become dead letters (a separate alert).

      **What to do:** usually wait: platform outages pass. If it lasts an hour, engineers look at the deliver / transform function's errors and max instances.
      EOT
    }

    # --------------------------------------------------------------------------- traffic_drop
    traffic_silence = {
      display_name = "tagpipe: no hits for ${var.alerting.traffic_silence_minutes} min"
      severity     = "WARNING"
      rule         = "traffic_drop"
      condition    = "collect received no request"
      # A metric-absence condition needs one data point after the policy is created, and lasts at most
      # 24.5 h through the API (https://cloud.google.com/monitoring/alerts/metric-absence): a new or
      # dormant install stays silent, like the local rule's "no verdict".
      absent = {
        filter   = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${var.services["collect"]}\" AND metric.type = \"run.googleapis.com/request_count\""
        duration = "${var.alerting.traffic_silence_minutes * 60}s"
        aggregations = {
          alignment_period     = "300s"
          per_series_aligner   = "ALIGN_RATE"
          cross_series_reducer = "REDUCE_SUM"
        }
      }
      subject = "tagpipe: no hits have arrived for ${var.alerting.traffic_silence_minutes} minutes"
      content = <<-EOT
      **What broke:** the site has sent nothing to tagpipe for ${var.alerting.traffic_silence_minutes} minutes.

      **What it means:** no conversions are being collected, so none reach the ad platforms. Hits that were never sent cannot be replayed.

      **What to do:** open the site and check that it still loads the tag and sends to the collect URL (browser developer tools → Network): a tag removed in a release, a changed domain or DNS record, or a consent banner that blocks everything are the usual causes. Engineers: check the collect function is up.
      EOT
    }

    traffic_drop = {
      display_name = "tagpipe: hits below ${var.alerting.traffic_min_share_of_last_week * 100}% of last week"
      severity     = "WARNING"
      rule         = "traffic_drop"
      condition    = "collect 2xx in the last ${var.alerting.traffic_window_minutes} min < ${var.alerting.traffic_min_share_of_last_week * 100}% of the same window a week ago (when that had >= ${var.alerting.traffic_min_baseline_hits})"
      # "or vector(0)": no request at all is a drop to 0%, not a missing series (which would close the
      # incident just when traffic stopped). Without last week's baseline there is no verdict.
      promql = {
        query    = <<-EOT
          (${local.traffic_now} or vector(0))
            < ${var.alerting.traffic_min_share_of_last_week} * ${local.traffic_before}
          and
          ${local.traffic_before} >= ${var.alerting.traffic_min_baseline_hits}
        EOT
        duration = "300s"
      }
      subject = "tagpipe: far fewer hits than the same time last week"
      content = <<-EOT
      **What broke:** in the last ${var.alerting.traffic_window_minutes} minutes the site sent less than ${var.alerting.traffic_min_share_of_last_week * 100}% of the hits of the same ${var.alerting.traffic_window_minutes} minutes one week ago.

      **What it means:** either the site really has fewer visitors (a campaign ended, a holiday, an outage of the shop), or tags stopped sending on some pages, so conversions are missing in every ad platform. Hits that were never sent cannot be replayed.

      **What to do:** compare with the shop's own analytics. If visitors are normal, check the pages that usually convert (checkout, thank-you page) still send to the collect URL, and whether a release or consent-banner change went out. If traffic stops entirely, the "no hits" alert follows.
      EOT
    }

    # --------------------------------------------------------------------------- collect_error_rate
    collect_error_rate = {
      display_name = "tagpipe: collect rejecting above ${var.alerting.collect_error_rate * 100}% of hits"
      severity     = "WARNING"
      rule         = "collect_error_rate"
      condition    = "share of incoming hits rejected (collect 4xx + unreadable hits), 15 min, at least ${var.alerting.collect_min_hits} hits"
      promql = {
        query    = <<-EOT
          ((${local.collect_4xx} or vector(0)) + (${local.collect_unread} or vector(0)))
            / ${local.collect_total}
            > ${var.alerting.collect_error_rate}
          and
          ${local.collect_total} >= ${var.alerting.collect_min_hits}
        EOT
        duration = "300s"
      }
      subject = "tagpipe: many incoming hits are being rejected"
      content = <<-EOT
      **What broke:** more than ${var.alerting.collect_error_rate * 100}% of the hits sent to tagpipe in the last 15 minutes were refused: broken JSON, a request too large, a missing or wrong API key for server-to-server calls, or one address sending too fast (rate limit).

      **What it means:** refused hits are not delivered anywhere, and they cannot be replayed. A broken tag after a site release is the usual cause.

      **What to do:** check what changed on the site or in the server-to-server sender (a new tag version, a new API key). Engineers: the `failed_events` table (stage `collect`) shows each refused request's reason code and path; collect's logs show the status codes.
      EOT
    }

    # --------------------------------------------------------------------------- match_keys_drop
    match_keys_drop = {
      display_name = "tagpipe: fewer delivered events carry match keys"
      severity     = "WARNING"
      rule         = "match_keys_drop"
      condition    = "share of delivered events carrying a key (${local.mk_keys}) fell by more than ${var.alerting.match_keys_max_drop * 100}% against the ${var.alerting.match_keys_baseline_days} days before, per destination and key"
      # now < (1 - max_drop) * baseline, for keys at least min_baseline_share in the baseline, with
      # enough delivered events in both windows (the local rule's no-verdict cases).
      promql = {
        query    = <<-EOT
          ${local.mk_share_now}
            < ${1 - var.alerting.match_keys_max_drop} * ${local.mk_share_was}
          and on (destination, key)
          ${local.mk_share_was} >= ${var.alerting.match_keys_min_baseline_share}
          ${local.mk_enough_events}
        EOT
        duration = "300s"
      }
      subject = "tagpipe: conversions sent with fewer match keys"
      content = <<-EOT
      **What broke:** fewer events delivered to **$${metric.label.destination}** carry the match key **$${metric.label.key}** (em = email, ph = phone, fbp = browser ID, fbc = click ID) than over the previous ${var.alerting.match_keys_baseline_days} days: a drop of more than ${var.alerting.match_keys_max_drop * 100}%.

      **What it means:** the platform can match fewer conversions to people who saw an ad, so reported conversions and ad optimisation get worse, although the events are still delivered.

      **What to do:** check what changed on the site: a checkout or form that no longer passes the email / phone to the tag, a consent-banner change, a cookie (fbp / fbc) no longer set on your domain, or a new tag version. Engineers: the dashboard's match-key card per destination shows the shares; the `outcomes.identifiers` column in BigQuery has them per event.
      EOT
    }

    # --------------------------------------------------------------------------- match_quality_drop
    match_quality_drop = {
      display_name = "tagpipe: estimated match quality dropped"
      severity     = "WARNING"
      rule         = "match_quality_drop"
      condition    = "tagpipe's estimated match quality (0-10, from the match keys sent) fell by more than ${var.alerting.match_quality_max_drop_points} points against the ${var.alerting.match_keys_baseline_days} days before, per destination"
      # was - now > max_drop, with enough delivered events in both windows. Per destination, not per event
      # name as locally: deliver's match_key_counts lines carry no event name.
      promql = {
        query    = <<-EOT
          (${local.mq_score_was}) - (${local.mq_score_now}) > ${var.alerting.match_quality_max_drop_points}
          ${local.mk_enough_events}
        EOT
        duration = "300s"
      }
      subject = "tagpipe: conversions sent with less to match on"
      content = <<-EOT
      **What broke:** the events delivered to **$${metric.label.destination}** carry fewer or weaker match keys than over the previous ${var.alerting.match_keys_baseline_days} days: tagpipe's estimated match quality fell by more than ${var.alerting.match_quality_max_drop_points} points of 10. It is an estimate from the keys sent (email, phone, click and browser ids, ...), not the vendor's own score.

      **What it means:** the platform can match fewer conversions to people, so reported conversions and ad optimisation get worse, although the events are still delivered.

      **What to do:** check what changed on the site (a form that no longer passes the email or phone, the consent banner, the fbp / fbc cookies, a new tag version). The dashboard's estimate per event name and the match-key shares show which key went.
      EOT
    }

    # --------------------------------------------------------------------------- GCP only
    collect_5xx = {
      display_name = "tagpipe: collect 5xx above ${var.alerting.collect_5xx_rate * 100}%"
      severity     = "ERROR"
      rule         = "gcp_infrastructure"
      condition    = "share of collect requests answered 5xx"
      threshold = {
        filter             = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${var.services["collect"]}\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\""
        denominator_filter = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${var.services["collect"]}\" AND metric.type = \"run.googleapis.com/request_count\""
        comparison         = "COMPARISON_GT"
        threshold_value    = var.alerting.collect_5xx_rate
        duration           = "300s"
        aggregations = {
          alignment_period     = "60s"
          per_series_aligner   = "ALIGN_RATE"
          cross_series_reducer = "REDUCE_SUM"
        }
        denominator_aggregations = {
          alignment_period     = "60s"
          per_series_aligner   = "ALIGN_RATE"
          cross_series_reducer = "REDUCE_SUM"
        }
      }
      subject = "tagpipe: collect cannot accept hits"
      content = <<-EOT
      **What broke:** tagpipe answered "try again later" to more than ${var.alerting.collect_5xx_rate * 100}% of the site's hits: it could not queue them (Pub/Sub unavailable or out of quota).

      **What it means:** the site's tags retry, so most hits arrive late rather than never; if it lasts, some are lost.

      **What to do (engineers):** check the Google Cloud status page for Pub/Sub and the collect function's logs.
      EOT
    }
  }
}

module "alert_policies" {
  source = "./alert_policies"

  project_id                   = var.project_id
  labels                       = var.labels
  notification_channels        = local.channels
  auto_close                   = local.auto_close
  log_alert_rate_limit_seconds = var.alerting.log_alert_rate_limit_minutes * 60
  policies                     = local.alert_policies

  depends_on = [google_logging_metric.match_keys, google_logging_metric.outcomes]
}
