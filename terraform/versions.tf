terraform {
  # optional() object attributes with defaults need 1.3; 1.5 for check blocks and import blocks.
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # Every resource that takes labels gets these (plus its own).
  default_labels = local.labels
}
