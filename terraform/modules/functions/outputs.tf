output "urls" {
  description = "Function -> its Cloud Run service URI (https://<name>-<hash>-<region>.a.run.app): the push endpoint and OIDC audience Cloud Run checks, and what a proxy forwards to (the path reaches the function unchanged)."
  value       = { for f in local.functions : f => google_cloudfunctions2_function.fn[f].service_config[0].uri }
}

output "service_names" {
  description = "Function -> name of its Cloud Run service (for metrics, IAM and the load balancer)."
  value       = { for f in local.functions : f => google_cloudfunctions2_function.fn[f].name }
}

output "service_accounts" {
  description = "Function -> email of its service account."
  value       = { for f in local.functions : f => google_service_account.fn[f].email }
}

output "invoker_service_account" {
  description = "Email of the account Pub/Sub push subscriptions and the drain scheduler jobs sign their OIDC tokens as."
  value       = google_service_account.invoker.email
}

output "publishers" {
  description = "Topic name (without prefix) -> members that may publish to it."
  value = {
    for topic in distinct(flatten([for f in local.functions : local.publishes[f]])) : topic => [
      for f, topics in local.publishes : "serviceAccount:${google_service_account.fn[f].email}" if contains(topics, topic) && contains(local.functions, f)
    ]
  }
}
