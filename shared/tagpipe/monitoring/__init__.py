"""Monitoring: structured logs, outcome counters, alert rules and notifiers, dashboard."""
