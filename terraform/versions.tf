terraform {
  # optional() object attributes with defaults need 1.3; 1.5 for check blocks and import blocks.
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.50 is the schema tests/terraform/test_provider_schema.py and `make plan`'s stand-in check
      # (cdktf-cdktf-provider-google 16.12.1); the modules' "~> 6.14" intersect with this. 7.46.1 and 8.7.0
      # are checked too (cdktn-provider-google 20.3.1, 21.1.0) before anyone widens this range.
      version = "~> 6.50"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # Every resource that takes labels gets these (plus its own).
  default_labels = local.labels
}
