output "database_id" {
  description = "The Firestore database id (TAGPIPE_FIRESTORE_DATABASE)."
  value       = google_firestore_database.keys.name
}
