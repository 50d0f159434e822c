output "dataset_id" {
  description = "The dataset id (TAGPIPE_BQ_DATASET)."
  value       = google_bigquery_dataset.this.dataset_id
}

output "record_tables" {
  description = "Records topic name (without prefix) -> fully qualified table id, for the BigQuery subscriptions."
  value = {
    for name, spec in local.tables : spec.topic => "${var.project_id}.${google_bigquery_table.tables[name].dataset_id}.${google_bigquery_table.tables[name].table_id}"
    if spec.topic != null
  }
}

output "dead_letter_table" {
  description = "Fully qualified id of the dead_letters table the archive subscription writes."
  value       = "${var.project_id}.${google_bigquery_table.tables["dead_letters"].dataset_id}.${google_bigquery_table.tables["dead_letters"].table_id}"
}

output "retention_days" {
  description = "Partition expiry in force per table."
  value       = local.retention_days
}
