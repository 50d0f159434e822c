# The dataset, one table per JSON schema in the tagpipe package (shared/tagpipe/storage/bigquery_schemas:
# the same files the Python writer reads, shipped inside the wheel and the function zips),
# partitioned by day with an expiry per table, clustered for the usual filters, and views that
# drop the rare duplicate an at-least-once BigQuery subscription can write.

locals {
  schemas_dir = "${path.module}/../../../shared/tagpipe/storage/bigquery_schemas"
  tables      = jsondecode(file("${local.schemas_dir}/tables.json"))

  # Days a partition is kept. raw_hits holds IPs and raw bodies (PII): short. Outcomes and events
  # cover a year of reporting plus a month. Traces are for debugging sessions only.
  default_retention_days = {
    raw_hits      = 30
    events        = 395
    outcomes      = 395
    failed_events = 90
    traces        = 7
    dead_letters  = 30
  }
  retention_days = merge(local.default_retention_days, var.retention_days)

  views = {
    outcomes_unique = "One row per (hit, event, destination) outcome."
    events_unique   = "One row per canonical event."
  }
}

resource "google_bigquery_dataset" "this" {
  #checkov:skip=CKV_GCP_81:CMEK is optional (var.kms_key_name); the default is Google-managed encryption.
  project                    = var.project_id
  dataset_id                 = var.dataset_id
  location                   = var.location
  description                = "tagpipe: raw hits, canonical events, outcomes, failed events and dead letters."
  delete_contents_on_destroy = !var.deletion_protection
  labels                     = var.labels

  dynamic "default_encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }
}

resource "google_bigquery_table" "tables" {
  #checkov:skip=CKV_GCP_80:CMEK is set on the dataset when var.kms_key_name is given; tables inherit it.
  #checkov:skip=CKV_GCP_121:deletion_protection is var.deletion_protection, true unless the user turns it off (checkov cannot resolve it).
  for_each = local.tables

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.this.dataset_id
  table_id            = each.key
  description         = each.value.description
  schema              = file("${local.schemas_dir}/tables/${each.key}.json")
  clustering          = each.value.clustering
  deletion_protection = var.deletion_protection
  labels              = var.labels

  time_partitioning {
    type          = "DAY"
    field         = each.value.partition_field
    expiration_ms = local.retention_days[each.key] > 0 ? local.retention_days[each.key] * 86400000 : null
  }
}

resource "google_bigquery_table" "views" {
  #checkov:skip=CKV_GCP_80:A view stores no data to encrypt.
  #checkov:skip=CKV_GCP_121:A view holds no data and is rebuilt from views/*.sql; protection would block changing it.
  for_each = local.views

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.this.dataset_id
  table_id            = each.key
  description         = each.value
  deletion_protection = false
  labels              = var.labels

  view {
    query          = templatefile("${path.module}/views/${each.key}.sql", { dataset = "${var.project_id}.${var.dataset_id}" })
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_table.tables]
}

# Reads outcomes_unique, so it comes after the views above.
resource "google_bigquery_table" "delivery_rates" {
  #checkov:skip=CKV_GCP_80:A view stores no data to encrypt.
  #checkov:skip=CKV_GCP_121:A view holds no data and is rebuilt from views/delivery_rates.sql; protection would block changing it.
  project             = var.project_id
  dataset_id          = google_bigquery_dataset.this.dataset_id
  table_id            = "delivery_rates"
  description         = "Outcomes per destination and hour, with the error rate the alert watches."
  deletion_protection = false
  labels              = var.labels

  view {
    query          = templatefile("${path.module}/views/delivery_rates.sql", { dataset = "${var.project_id}.${var.dataset_id}" })
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_table.views]
}

# Pub/Sub's BigQuery subscriptions write as the Pub/Sub service agent.
resource "google_bigquery_dataset_iam_member" "pubsub_writer" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.this.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${var.pubsub_service_agent}"
}
