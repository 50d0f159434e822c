# Optional: collect under the site's own domain (t.example.com) through a global external
# Application Load Balancer with a serverless NEG. A cookie set by a server on the site's own
# domain and IP space is first-party; Safari's ITP caps cookies set by a server whose IP does not
# match the site's (a CNAME to a third party) at 7 days. See docs/first-party-serving.md.

resource "google_compute_global_address" "collect" {
  project = var.project_id
  name    = "${var.prefix}-collect"
  labels  = var.labels
}

resource "google_compute_region_network_endpoint_group" "collect" {
  project               = var.project_id
  name                  = "${var.prefix}-collect"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = var.service_name # a gen2 function is a Cloud Run service of the same name
  }
}

resource "google_compute_backend_service" "collect" {
  project               = var.project_id
  name                  = "${var.prefix}-collect"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  security_policy       = var.security_policy

  backend {
    group = google_compute_region_network_endpoint_group.collect.id
  }

  log_config {
    enable      = true
    sample_rate = 0.1
  }
}

resource "google_compute_url_map" "collect" {
  project         = var.project_id
  name            = "${var.prefix}-collect"
  default_service = google_compute_backend_service.collect.id
}

resource "google_compute_managed_ssl_certificate" "collect" {
  project = var.project_id
  name    = "${var.prefix}-collect"

  managed {
    domains = var.domains
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_ssl_policy" "modern" {
  project         = var.project_id
  name            = "${var.prefix}-modern-tls"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "collect" {
  project          = var.project_id
  name             = "${var.prefix}-collect"
  url_map          = google_compute_url_map.collect.id
  ssl_certificates = [google_compute_managed_ssl_certificate.collect.id]
  ssl_policy       = google_compute_ssl_policy.modern.id
}

resource "google_compute_global_forwarding_rule" "https" {
  project               = var.project_id
  name                  = "${var.prefix}-collect-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.collect.id
  port_range            = "443"
  target                = google_compute_target_https_proxy.collect.id
  labels                = var.labels
}

# Plain HTTP only redirects to HTTPS.
resource "google_compute_url_map" "redirect" {
  project = var.project_id
  name    = "${var.prefix}-collect-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  project = var.project_id
  name    = "${var.prefix}-collect-redirect"
  url_map = google_compute_url_map.redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  project               = var.project_id
  name                  = "${var.prefix}-collect-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.collect.id
  port_range            = "80"
  target                = google_compute_target_http_proxy.redirect.id
  labels                = var.labels
}
