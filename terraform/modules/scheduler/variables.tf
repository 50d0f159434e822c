variable "project_id" {
  type        = string
  description = "Project of the scheduler jobs."
}

variable "region" {
  type        = string
  description = "Cloud Scheduler location (the functions' region; Cloud Scheduler must be offered there)."
}

variable "prefix" {
  type        = string
  description = "Name prefix: jobs are {prefix}-drain-transform and {prefix}-drain-deliver-<id>."
}

variable "transform_url" {
  type        = string
  description = "HTTPS URL of the transform function (the OIDC audience; the job calls <url>/drain)."
}

variable "deliver_url" {
  type        = string
  description = "HTTPS URL of the deliver function (the OIDC audience; the jobs call <url>/drain)."
}

variable "destinations" {
  type        = list(string)
  description = "Destination ids: one deliver drain job each (the same list as the pubsub module's)."
}

variable "timeouts" {
  type = object({
    transform = number
    deliver   = number
  })
  description = "Function timeouts in seconds: each job's attempt deadline."
}

variable "schedule" {
  type        = string
  description = "Cron schedule of every drain job (Cloud Scheduler's finest is every minute)."
  default     = "* * * * *"
}

variable "invoker_service_account" {
  type        = string
  description = "Email of the account the jobs sign their OIDC tokens as (holds run.invoker on transform and deliver)."
}

variable "scheduler_service_agent" {
  type        = string
  description = "Email of the project's Cloud Scheduler service agent (service-<number>@gcp-sa-cloudscheduler.iam.gserviceaccount.com)."
}
