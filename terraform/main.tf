# tagpipe on Google Cloud.
#
#   site --HTTPS--> [collect] --publish--> {prefix}-raw-hits --{prefix}-transform--> [transform]
#                                                                                       |
#            {prefix}-deliveries-<id> <-------------publish, one topic per destination------+
#                 |
#                 +--{prefix}-deliver-<id>--> [deliver] --HTTPS--> Meta CAPI, GA4 MP, ...
#
#   stage_trigger = "push": those subscriptions push each message to the function (OIDC);
#   stage_trigger = "schedule": they are pull subscriptions, and Cloud Scheduler jobs (OIDC) call
#   the functions every minute to drain them (modules/scheduler, shared/tagpipe/pipeline/drain.py).
#
#   every stage --publish--> {prefix}-records-<table> --BigQuery subscription--> dataset tables
#   any push subscription, after max attempts --> {prefix}-dead-letter --BigQuery subscription--> dead_letters
#                                                       (and, with enable_archive_function, --push--> [archive])
#   idempotency keys (delivered, outcomes) --> Firestore database {prefix}-keys (TTL)

locals {
  labels = merge(var.labels, {
    app        = "tagpipe"
    managed-by = "terraform"
    tagpipe    = var.prefix
  })

  apis = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudfunctions.googleapis.com",
    "compute.googleapis.com",
    "datamanager.googleapis.com", # a data_manager destination calls it with deliver's own service account
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]

  # The Google-managed service account Pub/Sub acts as: it forwards dead letters, signs the push
  # OIDC tokens and writes BigQuery subscriptions.
  pubsub_service_agent = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # Cloud Scheduler's: it signs the drain jobs' OIDC tokens (stage_trigger = "schedule").
  scheduler_service_agent = "service-${data.google_project.this.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"

  firestore_database = "${var.prefix}-keys"

  # transform and deliver, sized for the trigger unless var.functions says otherwise. Push: up to 40
  # pushes at once in one instance need a whole vCPU. Schedule: one drain a minute per job, mostly
  # waiting on Pub/Sub and the vendors: 1/3 vCPU (gen2's pairing for 512Mi; below 1 vCPU Cloud Run
  # takes one request at a time) bills 2.7x less per second (docs/benchmarks.md section 5).
  stage_defaults = var.stage_trigger == "schedule" ? { cpu = "0.333", concurrency = 1 } : { cpu = "1", concurrency = 40 }
  stage_sizing = { for f in ["transform", "deliver"] : f => merge(var.functions[f], {
    cpu         = coalesce(var.functions[f].cpu, local.stage_defaults.cpu)
    concurrency = coalesce(var.functions[f].concurrency, local.stage_defaults.concurrency)
  }) }
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset(local.apis) : toset([])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

module "bigquery" {
  source = "./modules/bigquery"

  project_id           = var.project_id
  prefix               = var.prefix
  dataset_id           = var.bigquery.dataset_id
  location             = var.bigquery.location
  retention_days       = var.bigquery.retention_days
  deletion_protection  = var.bigquery.deletion_protection
  kms_key_name         = var.bigquery.kms_key_name
  pubsub_service_agent = local.pubsub_service_agent
  labels               = local.labels

  depends_on = [google_project_service.apis]
}

module "firestore" {
  source = "./modules/firestore"

  project_id          = var.project_id
  database_id         = local.firestore_database
  location_id         = var.firestore.location_id
  deletion_protection = var.firestore.deletion_protection

  depends_on = [google_project_service.apis]
}

module "secrets" {
  source = "./modules/secrets"

  project_id = var.project_id
  prefix     = var.prefix
  secrets    = var.secrets
  labels     = local.labels

  depends_on = [google_project_service.apis]
}

module "functions" {
  source = "./modules/functions"

  project_id         = var.project_id
  region             = var.region
  prefix             = var.prefix
  python_runtime     = var.functions.python_runtime
  source_dir         = abspath("${path.root}/${var.functions.source_dir}")
  sizing             = { collect = var.functions.collect, transform = local.stage_sizing.transform, deliver = local.stage_sizing.deliver, archive = var.functions.archive }
  archive            = var.enable_archive_function
  dataset_id         = module.bigquery.dataset_id
  firestore_database = module.firestore.database_id
  dedup_ttl_days     = var.firestore.dedup_ttl_days
  secrets            = module.secrets.secrets
  labels             = local.labels

  depends_on = [google_project_service.apis]
}

module "pubsub" {
  source = "./modules/pubsub"

  project_id           = var.project_id
  prefix               = var.prefix
  pubsub_service_agent = local.pubsub_service_agent
  labels               = local.labels

  trigger      = var.stage_trigger
  destinations = var.destinations
  push_endpoints = merge(
    {
      transform = module.functions.urls["transform"]
      deliver   = module.functions.urls["deliver"]
    },
    { for s, url in { "dead-letter-archive" = lookup(module.functions.urls, "archive", "") } : s => url if var.enable_archive_function },
  )
  ack_deadline_seconds = {
    transform             = var.functions.transform.timeout
    deliver               = var.functions.deliver.timeout
    "dead-letter-archive" = var.functions.archive.timeout
  }
  invoker_service_account = module.functions.invoker_service_account
  delivery                = var.delivery
  publishers              = module.functions.publishers
  record_tables           = module.bigquery.record_tables
  dead_letter_table       = module.bigquery.dead_letter_table

  depends_on = [google_project_service.apis, module.bigquery]
}

module "monitoring" {
  source = "./modules/monitoring"

  project_id       = var.project_id
  prefix           = var.prefix
  alerting         = var.alerting
  slack_auth_token = var.slack_auth_token
  services         = module.functions.service_names
  # "push" is every subscription that feeds a function, pushed or drained: both have a backlog age
  # and dead letters to watch
  subscriptions = {
    stages  = module.pubsub.subscription_names.stages
    archive = module.pubsub.subscription_names.archive
    records = module.pubsub.subscription_names.records
  }
  labels = local.labels

  depends_on = [google_project_service.apis]
}

module "scheduler" {
  source = "./modules/scheduler"
  count  = var.stage_trigger == "schedule" ? 1 : 0

  project_id              = var.project_id
  region                  = var.region
  prefix                  = var.prefix
  transform_url           = module.functions.urls["transform"]
  deliver_url             = module.functions.urls["deliver"]
  destinations            = var.destinations
  timeouts                = { transform = var.functions.transform.timeout, deliver = var.functions.deliver.timeout }
  invoker_service_account = module.functions.invoker_service_account
  scheduler_service_agent = local.scheduler_service_agent

  depends_on = [google_project_service.apis, module.pubsub]
}

module "loadbalancer" {
  source = "./modules/loadbalancer"
  count  = var.enable_custom_domain ? 1 : 0

  project_id      = var.project_id
  region          = var.region
  prefix          = var.prefix
  service_name    = module.functions.service_names["collect"]
  domains         = var.custom_domain.domains
  security_policy = var.custom_domain.security_policy
  labels          = local.labels

  depends_on = [google_project_service.apis]
}

check "custom_domain_has_domains" {
  assert {
    condition     = !var.enable_custom_domain || length(var.custom_domain.domains) > 0
    error_message = "enable_custom_domain = true needs custom_domain.domains, e.g. [\"t.example.com\"]."
  }
}

module "dashboard" {
  source = "./modules/dashboard"
  count  = var.dashboard_enabled ? 1 : 0

  project_id        = var.project_id
  project_number    = data.google_project.this.number
  region            = var.region
  prefix            = var.prefix
  dataset_id        = module.bigquery.dataset_id
  location          = var.bigquery.location
  image             = var.dashboard.image
  members           = var.dashboard.members
  ingress           = var.dashboard.ingress
  lookback_days     = var.dashboard.lookback_days
  cache_ttl_seconds = var.dashboard.cache_ttl_seconds
  max_scan_gb       = var.dashboard.max_scan_gb
  max_instances     = var.dashboard.max_instances
  labels            = local.labels

  depends_on = [google_project_service.apis]
}
