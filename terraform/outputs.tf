output "collect_url" {
  description = "The endpoint the site's tags send hits to (the custom domain when enabled)."
  value       = var.enable_custom_domain ? module.loadbalancer[0].urls[0] : module.functions.urls["collect"]
}

output "function_urls" {
  description = "Function -> its own HTTPS URL."
  value       = module.functions.urls
}

output "custom_domain_ip" {
  description = "With enable_custom_domain: the IP each domain's DNS A record must point to."
  value       = var.enable_custom_domain ? module.loadbalancer[0].ip_address : null
}

output "topics" {
  description = "Pub/Sub topics."
  value       = module.pubsub.topics
}

output "subscriptions" {
  description = "Subscriptions that feed the functions (transform, deliver-<id>), by name, and the drain scheduler jobs (stage_trigger = \"schedule\")."
  value = {
    stages     = module.pubsub.subscription_names.stages
    drain_jobs = var.stage_trigger == "schedule" ? module.scheduler[0].job_names : {}
  }
}

output "bigquery_dataset" {
  description = "project.dataset of the records."
  value       = "${var.project_id}.${module.bigquery.dataset_id}"
}

output "firestore_database" {
  description = "Firestore database of the idempotency keys."
  value       = module.firestore.database_id
}

output "service_accounts" {
  description = "Function -> service account email."
  value       = module.functions.service_accounts
}

output "secrets_to_fill" {
  description = "The commands that add each secret's value (run them once; values never pass through Terraform)."
  value = [
    for name, s in module.secrets.secrets : "printf %s \"$${name}\" | gcloud secrets versions add ${s.secret_id} --project ${var.project_id} --data-file=-"
    if length(s.functions) > 0
  ]
}

output "dashboard" {
  description = "With dashboard_enabled: the Cloud Run service to open with `gcloud run services proxy`, its URL, and the secret that holds its token."
  value = var.dashboard_enabled ? {
    service      = module.dashboard[0].service_name
    url          = module.dashboard[0].url
    token_secret = module.dashboard[0].token_secret
  } : null
}
