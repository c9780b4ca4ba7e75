"""What operators look at: Grafana dashboards as code and Siaga's web UI (later issues)."""
