"""What operators look at: the settings tree so far plus the HTTP API and Grafana."""

from __future__ import annotations

from alerts.settings import Settings as AlertsSettings


class Settings(AlertsSettings):
    """Alerting's settings plus the API's and Grafana's."""
