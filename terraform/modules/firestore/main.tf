# The idempotency keys: "was this outcome recorded", "was this dedup key delivered to this
# destination". BigQuery cannot answer a keyed read per batch in milliseconds; Firestore does
# (one batchGet / one batchWrite with exists=false preconditions per batch, see
# shared/tagpipe/storage/bigquery.py). Documents carry `expire_at`; the TTL policies below delete them.

locals {
  collections = ["delivered", "outcomes"] # tagpipe.storage.bigquery.DELIVERED / OUTCOMES
}

resource "google_firestore_database" "keys" {
  project                           = var.project_id
  name                              = var.database_id
  location_id                       = var.location_id
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_DISABLED" # keys are rebuildable; expiring anyway
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy                   = "DELETE"
}

# TTL on expire_at, and no single-field index on it: nothing queries it, and an index on a
# monotonically growing timestamp would cap the write rate.
resource "google_firestore_field" "expire_at" {
  for_each = toset(local.collections)

  project    = var.project_id
  database   = google_firestore_database.keys.name
  collection = each.value
  field      = "expire_at"

  ttl_config {}

  index_config {}
}
