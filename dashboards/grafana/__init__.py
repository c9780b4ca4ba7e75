"""Grafana dashboards as code, generated from the station registry (grafana-foundation-sdk)."""
