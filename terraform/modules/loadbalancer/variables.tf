variable "project_id" {
  type        = string
  description = "Project of the load balancer."
}

variable "region" {
  type        = string
  description = "Region of the collect function (its serverless NEG lives there)."
}

variable "prefix" {
  type        = string
  description = "Name prefix."
}

variable "service_name" {
  type        = string
  description = "Cloud Run service name of the collect function."
}

variable "domains" {
  type        = list(string)
  description = "Hostnames served (e.g. t.example.com); each needs a DNS A record to the output IP before the managed certificate can be issued."
}

variable "security_policy" {
  type        = string
  description = "Self-link of a Cloud Armor security policy for the backend, or null."
  default     = null
}

variable "labels" {
  type        = map(string)
  description = "Labels for the resources that take them (address, forwarding rules)."
  default     = {}
}
