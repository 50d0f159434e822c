variable "project_id" {
  type        = string
  description = "Project of the dashboard service; its BigQuery jobs are billed here."
}

variable "project_number" {
  type        = string
  description = "The project's number, for the service's deterministic run.app host name."
}

variable "region" {
  type        = string
  description = "Region of the Cloud Run service."
}

variable "prefix" {
  type        = string
  description = "Name prefix: the service and its service account are {prefix}-dashboard."
}

variable "dataset_id" {
  type        = string
  description = "The tagpipe BigQuery dataset the dashboard reads (TAGPIPE_BQ_DATASET)."
}

variable "location" {
  type        = string
  description = "The dataset's location (EU, US, ...), passed to the queries; null lets BigQuery find it."
  default     = null
}

variable "image" {
  type        = string
  description = "Container image with tagpipe installed (terraform/modules/dashboard/Dockerfile), e.g. REGION-docker.pkg.dev/PROJECT/REPO/tagpipe-dashboard:TAG."

  validation {
    condition     = length(var.image) > 0
    error_message = "dashboard.image: build and push terraform/modules/dashboard/Dockerfile and give its image name."
  }
}

variable "members" {
  type        = list(string)
  description = "Who may open the dashboard (roles/run.invoker): user:, group: or domain: members of the project's organisation."

  validation {
    condition     = length(var.members) > 0 && alltrue([for m in var.members : can(regex("^(user|group|domain|serviceAccount):.+", m))])
    error_message = "dashboard.members: at least one user:, group:, domain: or serviceAccount: member (never allUsers or allAuthenticatedUsers)."
  }
}

variable "ingress" {
  type        = string
  description = "Cloud Run ingress. INGRESS_TRAFFIC_ALL lets members reach it through `gcloud run services proxy` (IAM still checks every request); INGRESS_TRAFFIC_INTERNAL_ONLY keeps it to the project's VPC networks."
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress: INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "lookback_days" {
  type        = number
  description = "How far back the debug list and lookups read (the partitions they scan)."
  default     = 7
}

variable "cache_ttl_seconds" {
  type        = number
  description = "Seconds an overview figure is reused before BigQuery is asked again."
  default     = 60
}

variable "max_scan_gb" {
  type        = number
  description = "Refuse any one query that would bill more than this many GiB (BigQuery maximum_bytes_billed); null: no cap."
  default     = 10
}

variable "max_instances" {
  type        = number
  description = "Most instances of the dashboard service (a handful of users need one)."
  default     = 2
}

variable "labels" {
  type        = map(string)
  description = "Labels for the service and the token secret."
  default     = {}
}
