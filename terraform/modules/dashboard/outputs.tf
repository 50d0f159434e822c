output "service_name" {
  description = "The Cloud Run service: `gcloud run services proxy <this> --region <region>` opens it on localhost."
  value       = google_cloud_run_v2_service.dashboard.name
}

output "url" {
  description = "The service's own HTTPS URL (IAM-protected: open it through gcloud run services proxy)."
  value       = google_cloud_run_v2_service.dashboard.uri
}

output "service_account" {
  description = "The dashboard's service account (BigQuery Data Viewer on the dataset, Job User on the project)."
  value       = google_service_account.dashboard.email
}

output "token_secret" {
  description = "Secret Manager secret that holds the dashboard token (add its value with gcloud secrets versions add)."
  value       = google_secret_manager_secret.token.secret_id
}
