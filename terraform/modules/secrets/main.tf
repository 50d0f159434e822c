# Only the containers. Values never pass through Terraform (so never through tfvars or the
# state): `printf %s "$VALUE" | gcloud secrets versions add <prefix>-<NAME> --data-file=-`.
# scripts/deploy.sh refuses to deploy the functions while a mounted secret has no version.

resource "google_secret_manager_secret" "this" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = "${var.prefix}-${each.key}"
  # deploy.sh checks that every mounted secret has a value before deploying the functions
  labels = merge(var.labels, { tagpipe-mounted = length(each.value) > 0 ? "true" : "false" })

  replication {
    auto {}
  }
}
