"""What operators look at: the settings tree so far plus the HTTP API and Grafana."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from alerts.settings import Settings as AlertsSettings
from ingest.settings import Section


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("give credentials in their own settings, not in the URL")
    return url.rstrip("/")


class GrafanaSettings(Section):
    """Grafana dashboards as code: what the provisioning tree says, and where ``push`` goes.

    The URLs here are as *Grafana* sees them (Grafana's server proxies the queries), which may
    differ from the ones Siaga's own processes use.
    """

    url: str = Field(default="http://127.0.0.1:3000", description="Grafana, for `push`")
    token: SecretStr | None = Field(
        default=None, description="service account token for `push` (SIAGA_GRAFANA__TOKEN)"
    )
    timeout_s: float = Field(default=10.0, gt=0)
    folder_uid: str = Field(default="siaga", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    folder_title: str = Field(default="Siaga", min_length=1)
    influx_url: str | None = Field(
        default=None, description="InfluxDB as Grafana reaches it (default: influx.url)"
    )
    influx_datasource_uid: str = Field(default="siaga-influxdb", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    prometheus_url: str = Field(
        default="http://127.0.0.1:9090", description="the Prometheus that scrapes the workers"
    )
    prometheus_datasource_uid: str = Field(
        default="siaga-prometheus", pattern=r"^[A-Za-z0-9_-]{1,40}$"
    )
    dashboards_path: str = Field(
        default="/var/lib/grafana/dashboards/siaga",
        description="where the json/ folder is mounted inside Grafana",
    )
    password_env: str = Field(
        default="SIAGA_INFLUX__PASSWORD",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="environment variable of Grafana's process holding InfluxDB's password",
    )
    token_env: str = Field(
        default="SIAGA_INFLUX__TOKEN",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="environment variable holding an InfluxDB 2.x/3.x token (v1 API)",
    )

    @field_validator("url", "prometheus_url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _http_url(url)

    @field_validator("influx_url")
    @classmethod
    def _optional_url(cls, url: str | None) -> str | None:
        return None if url is None else _http_url(url)


class Settings(AlertsSettings):
    """Alerting's settings plus the API's and Grafana's."""

    grafana: GrafanaSettings = GrafanaSettings()
