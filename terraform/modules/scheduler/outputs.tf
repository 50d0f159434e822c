output "job_names" {
  description = "Drained subscription (transform, deliver-<id>) -> full name of its scheduler job."
  value       = { for k in keys(local.jobs) : k => google_cloud_scheduler_job.drain[k].id }
}
