output "secrets" {
  description = "Environment variable name -> { secret_id, functions } for the functions module."
  value = {
    for name, fns in var.secrets : name => {
      secret_id = google_secret_manager_secret.this[name].secret_id
      functions = fns
    }
  }
}
