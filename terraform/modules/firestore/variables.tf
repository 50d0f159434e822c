variable "project_id" {
  type        = string
  description = "Project of the database."
}

variable "database_id" {
  type        = string
  description = "Firestore database id (TAGPIPE_FIRESTORE_DATABASE); a database of its own, so it never collides with an app's (default) one."
}

variable "location_id" {
  type        = string
  description = "Firestore location: a multi-region (eur3, nam5) or a region. Pick the one nearest the functions' region."
  default     = "eur3"
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to delete the database."
  default     = true
}
