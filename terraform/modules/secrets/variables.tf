variable "project_id" {
  type        = string
  description = "Project of the secrets."
}

variable "prefix" {
  type        = string
  description = "Secret ids are {prefix}-{ENV_NAME}."
}

variable "secrets" {
  type        = map(list(string))
  description = "Environment variable name -> the functions that read it."
}

variable "labels" {
  type        = map(string)
  description = "Labels for the secrets."
  default     = {}
}
