"""What operators look at: the HTTP API, the web UI and Grafana dashboards as code."""
