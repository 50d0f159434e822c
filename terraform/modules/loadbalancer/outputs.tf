output "ip_address" {
  description = "Point each domain's DNS A record here; the certificate is issued once DNS resolves."
  value       = google_compute_global_address.collect.address
}

output "urls" {
  description = "The collect endpoints on the custom domains."
  value       = [for d in var.domains : "https://${d}"]
}
