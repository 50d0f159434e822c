# The dashboard and debug view as a Cloud Run service over the BigQuery tables (optional: the root's
# dashboard_enabled). It runs `tagpipe dashboard --store bigquery` (shared/tagpipe/ops/cli.py) from an
# image built with this folder's Dockerfile, as its own service account, which may only read the
# dataset and run query jobs: it cannot publish, write a table or read a vendor secret.
#
# Who reaches it: Cloud Run checks IAM on every request (no allUsers): only var.members hold
# roles/run.invoker. They open it through `gcloud run services proxy <prefix>-dashboard --region R`,
# which signs the requests with their own Google identity and serves it on http://localhost:8080.
# Behind that, the dashboard's own token (TAGPIPE_DASHBOARD_TOKEN) is required, as off loopback it always
# is: its value lives in Secret Manager only, added out of band, never in tfvars or the state:
#   printf %s "$(openssl rand -hex 24)" | gcloud secrets versions add <prefix>-TAGPIPE_DASHBOARD_TOKEN --data-file=-

locals {
  name = "${var.prefix}-dashboard"
  # Cloud Run's deterministic URL, https://SERVICE-PROJECT_NUMBER.REGION.run.app
  # (https://cloud.google.com/run/docs/triggering/https-request#deterministic): the Host the dashboard
  # answers to besides localhost (its DNS-rebinding check), known before the service exists
  host = "${local.name}-${var.project_number}.${var.region}.run.app"
  port = 8081
  args = concat(
    ["dashboard", "--store", "bigquery", "--project", var.project_id, "--dataset", var.dataset_id,
      "--host", "0.0.0.0", "--port", tostring(local.port), "--token-env", "TAGPIPE_DASHBOARD_TOKEN",
      "--allowed-host", local.host, "--lookback-days", tostring(var.lookback_days),
    "--cache-ttl", tostring(var.cache_ttl_seconds)],
    var.max_scan_gb == null ? [] : ["--max-scan-gb", tostring(var.max_scan_gb)],
    var.location == null ? [] : ["--location", var.location],
  )
}

resource "google_service_account" "dashboard" {
  project      = var.project_id
  account_id   = local.name
  display_name = "tagpipe dashboard"
  description  = "Runs the tagpipe dashboard: reads the tagpipe dataset and runs query jobs, nothing else."
}

# Read the tables (and views) of the tagpipe dataset only.
resource "google_bigquery_dataset_iam_member" "viewer" {
  project    = var.project_id
  dataset_id = var.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = "serviceAccount:${google_service_account.dashboard.email}"
}

# Run query jobs (billed to the project). Job User grants no data access by itself: which tables a job
# may read is the dataset's grant above (https://cloud.google.com/bigquery/docs/access-control#bigquery.jobUser).
resource "google_project_iam_member" "job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.dashboard.email}"
}

# The dashboard token: the container only; its value is added with gcloud (see above).
resource "google_secret_manager_secret" "token" {
  project   = var.project_id
  secret_id = "${var.prefix}-TAGPIPE_DASHBOARD_TOKEN"
  labels    = merge(var.labels, { tagpipe-mounted = "true" })

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_iam_member" "token" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.token.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.dashboard.email}"
}

resource "google_cloud_run_v2_service" "dashboard" {
  project             = var.project_id
  name                = local.name
  location            = var.region
  description         = "tagpipe dashboard and debug view over BigQuery"
  ingress             = var.ingress
  deletion_protection = false # stateless: nothing is lost with it
  labels              = var.labels

  template {
    service_account                  = google_service_account.dashboard.email
    max_instance_request_concurrency = 20
    timeout                          = "60s"
    labels                           = var.labels

    scaling {
      min_instance_count = 0 # idle: nothing billed but the image's storage
      max_instance_count = var.max_instances
    }

    containers {
      image   = var.image
      command = ["tagpipe"]
      args    = local.args

      ports {
        container_port = local.port
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle = true # CPU only while a request is served
      }

      env {
        name  = "TAGPIPE_LOG_FORMAT"
        value = "json"
      }

      env {
        name = "TAGPIPE_DASHBOARD_TOKEN"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.token.secret_id
            version = "latest"
          }
        }
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.token, google_bigquery_dataset_iam_member.viewer]
}

# Only the project's users named here may call it.
resource "google_cloud_run_v2_service_iam_member" "viewers" {
  for_each = toset(var.members)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.dashboard.name
  role     = "roles/run.invoker"
  member   = each.value
}
