# The three Cloud Functions (gen2, so Cloud Run services underneath), one service account each.
#
# Sizing (defaults in the root variables.tf, overridable per function):
# - collect: public; 0.167 vCPU / 256Mi, concurrency 1 (Cloud Run's rule below 1 vCPU), scales to
#   zero: Cloud Run bills instance time in 100 ms steps and an idle min instance all month, so per hit
#   this is the cheapest sizing that holds collect (~100 MiB with the Pub/Sub client); ~20 ms per hit,
#   a ~3-4 s cold start. Bursty traffic: 1 vCPU / 512Mi / concurrency 80 (docs/benchmarks.md §5).
# - transform (push trigger): private, scales to zero; 1 vCPU, concurrency 40 = the size of the thread pool the ASGI
#   adapter hands each push request to (anyio's default), so a request never queues inside an
#   instance; CPU-light parsing. Timeout 60 s = the subscription's ack deadline.
# - deliver (push trigger): private, scales to zero; 1 vCPU, concurrency 40 (threads waiting on vendor APIs); timeout
#   120 s covers a vendor's slow answer plus retries inside one request; the push ack deadline
#   is set to the same value so Pub/Sub never redelivers a message still in flight.
# - archive (optional): private, scales to zero, at most 5 instances: dead letters are rare and
#   nothing waits on them.
# - With the schedule trigger, transform and deliver serve one drain request per scheduler job a
#   minute, so the root sizes them at 1/3 vCPU, one request at a time (local.stage_sizing: a drain
#   mostly waits on Pub/Sub and the vendors); TAGPIPE_DRAIN_SECONDS = half the timeout bounds a
#   drain, so the batch in hand when the budget runs out still finishes (and is settled) before the
#   timeout. At 1/3 vCPU a transform drain handles ~1,000 events a second, ~30,000 a minute.
#
# FUNCTION_USE_ASGI=true: the gen2 Python buildpack starts the bare `functions-framework`
# command (GoogleCloudPlatform/buildpacks cmd/python/functions_framework), whose --asgi flag is
# bound to that environment variable (functions_framework/_cli.py), so setting it on the service
# serves our `functions_framework.aio` functions with uvicorn workers. Without it the async
# functions would be served by the Flask/gunicorn app and fail.

locals {
  functions = toset(concat(["collect", "transform", "deliver"], var.archive ? ["archive"] : []))
  private   = toset([for f in local.functions : f if f != "collect"]) # invoked by Pub/Sub push or Cloud Scheduler only

  # What each function publishes to (topic names without the prefix). Least privilege: a
  # function gets roles/pubsub.publisher on these topics only.
  publishes = {
    collect   = ["raw-hits", "records-failed-events", "records-outcomes", "records-traces"]
    transform = ["deliveries", "records-raw-hits", "records-events", "records-failed-events", "records-outcomes", "records-traces"]
    deliver   = ["dead-letter", "records-failed-events", "records-outcomes", "records-traces"]
    archive   = ["records-failed-events", "records-outcomes"]
  }

  env = {
    TAGPIPE_TRANSPORT          = "pubsub"
    TAGPIPE_STORE              = "bigquery"
    TAGPIPE_GCP_PROJECT        = var.project_id
    TAGPIPE_TOPIC_PREFIX       = var.prefix
    TAGPIPE_BQ_DATASET         = var.dataset_id
    TAGPIPE_FIRESTORE_DATABASE = var.firestore_database
    TAGPIPE_DEDUP_TTL_DAYS     = tostring(var.dedup_ttl_days)
    TAGPIPE_CONFIG             = "/workspace/tagpipe.toml" # packaged at the zip root; buildpacks unpack to /workspace
    TAGPIPE_LOG_FORMAT         = "json"
    FUNCTION_USE_ASGI          = "true"
  }

  # Function -> [{ env, secret_id }] of the secrets it reads.
  secrets = {
    for f in local.functions : f => [
      for name, s in var.secrets : { env = name, secret_id = s.secret_id } if contains(s.functions, f)
    ]
  }
  # Per function, over env.
  function_env = {
    # one request per instance: no other hit can join a publish batch, so the window would only add latency
    collect   = { TAGPIPE_PUBSUB_BATCH_MS = var.sizing["collect"].concurrency == 1 ? "0" : "2" }
    transform = { TAGPIPE_DRAIN_SECONDS = tostring(floor(var.sizing["transform"].timeout / 2)) }
    deliver   = { TAGPIPE_DRAIN_SECONDS = tostring(floor(var.sizing["deliver"].timeout / 2)) }
  }

  secret_grants = merge([
    for f, list in local.secrets : { for s in list : "${f}/${s.env}" => { function = f, secret_id = s.secret_id } }
  ]...)
}

resource "google_service_account" "fn" {
  for_each = local.functions

  project      = var.project_id
  account_id   = "${var.prefix}-${each.key}"
  display_name = "tagpipe ${each.key} function"
  description  = "Runs the ${each.key} function: publishes to its topics only, reads only its secrets."
}

# Pub/Sub signs the push requests to transform and deliver with this account's OIDC token (and
# Cloud Scheduler its drain requests, with the schedule trigger); it may invoke those private
# services and nothing else.
resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.prefix}-push-invoker"
  display_name = "tagpipe Pub/Sub push invoker"
  description  = "Identity of the Pub/Sub push subscriptions and drain scheduler jobs (OIDC) that call transform and deliver."
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Access logs for a bucket that only holds build sources add cost, not insight.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.prefix}-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age        = 30
      with_state = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

# Object names carry the zip's hash, so a changed zip redeploys its function and an unchanged
# one does not.
resource "google_storage_bucket_object" "source" {
  for_each = local.functions

  name   = "${each.key}-${filemd5("${var.source_dir}/${each.key}.zip")}.zip"
  bucket = google_storage_bucket.source.name
  source = "${var.source_dir}/${each.key}.zip"
}

resource "google_cloudfunctions2_function" "fn" {
  #checkov:skip=CKV_GCP_124:collect is the public tag endpoint (ALLOW_ALL by design); transform and deliver get ALLOW_INTERNAL_ONLY through the conditional below, which checkov cannot evaluate (tests/terraform checks it).
  for_each = local.functions

  project     = var.project_id
  name        = "${var.prefix}-${each.key}"
  location    = var.region
  description = "tagpipe ${each.key}"
  labels      = var.labels

  build_config {
    runtime     = var.python_runtime
    entry_point = each.key
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = var.sizing[each.key].memory
    available_cpu                    = var.sizing[each.key].cpu
    max_instance_request_concurrency = var.sizing[each.key].concurrency
    min_instance_count               = var.sizing[each.key].min_instances
    max_instance_count               = var.sizing[each.key].max_instances
    timeout_seconds                  = var.sizing[each.key].timeout
    # collect takes the internet's requests; transform and deliver only Pub/Sub's and Cloud
    # Scheduler's, which Cloud Run counts as internal traffic for services in the same project.
    ingress_settings               = each.key == "collect" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.fn[each.key].email
    environment_variables          = merge(local.env, lookup(local.function_env, each.key, {}))

    dynamic "secret_environment_variables" {
      for_each = local.secrets[each.key]
      content {
        key        = secret_environment_variables.value.env
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret_id
        version    = "latest"
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.access]
}

# collect is the public endpoint the site's tags call.
resource "google_cloud_run_v2_service_iam_member" "public" {
  # allUsers: collect must be callable by every browser, it is the tag endpoint.
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn["collect"].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  for_each = local.private

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}

resource "google_secret_manager_secret_iam_member" "access" {
  for_each = local.secret_grants

  project   = var.project_id
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn[each.value.function].email}"
}

# The idempotency keys: read/write on the tagpipe Firestore database only (IAM condition).
resource "google_project_iam_member" "firestore" {
  for_each = local.functions

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.fn[each.key].email}"

  condition {
    title       = "${var.prefix}-keys-only"
    description = "Only the tagpipe idempotency-key database."
    expression  = "resource.name.startsWith(\"projects/${var.project_id}/databases/${var.firestore_database}\")"
  }
}
