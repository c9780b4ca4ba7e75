"""What operators look at: the settings tree so far plus the HTTP API and Grafana."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from alerts.settings import ApiSettings as ApiLinkSettings
from alerts.settings import Settings as AlertsSettings
from ingest.settings import Section


class ApiSettings(ApiLinkSettings):
    """The HTTP API and web UI (``siaga serve``); where people reach it and the link key come
    from alerting's part of the section (``alerts.settings.ApiSettings``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    cookie_name: str = Field(default="siaga_session", pattern=r"^[A-Za-z0-9_-]+$")
    cookie_secure: bool = Field(
        default=False, description="send the session cookie over HTTPS only (set in production)"
    )
    cookie_samesite: Literal["lax", "strict"] = "lax"
    session_ttl_s: int = Field(default=12 * 3600, ge=60)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_s: float = Field(default=300.0, gt=0)
    cap_feed_public: bool = Field(
        default=True, description="serve /api/v1/cap.atom without authentication"
    )
    cap_feed_key: SecretStr | None = Field(
        default=None, description="when the feed is not public, this key (?key=) also opens it"
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="larger request bodies are refused with 413"
    )
    live_max_streams: int = Field(
        default=500, ge=1, description="concurrent /api/v1/events streams in all (then 503)"
    )
    live_max_streams_per_user: int = Field(
        default=8, ge=1, description="concurrent /api/v1/events streams per user or key (then 429)"
    )
    live_poll_s: float = Field(default=0.5, gt=0, le=10)
    live_queue_max: int = Field(default=256, ge=1)
    stale_after_intervals: float = Field(
        default=2.0, gt=0, description="a station is stale after this many report intervals"
    )
    trend_window_s: int = Field(default=3600, ge=60)
    overview_max_age_s: float = Field(
        default=1.0,
        ge=0,
        description="the station list's readings are shared by requests this long (one set of "
        "InfluxDB queries per interval however many operators look); 0 queries every time",
    )
    overview_max_stale_s: float = Field(
        default=5.0,
        gt=0,
        description="a station list older than this is never served: the request waits for a "
        "fresh one (older than overview_max_age_s it is refreshed in the background)",
    )

    @model_validator(mode="after")
    def _overview_bounded(self) -> ApiSettings:
        if self.overview_max_stale_s < self.overview_max_age_s:
            msg = (
                f"api.overview_max_stale_s ({self.overview_max_stale_s:g}) must be at least "
                f"api.overview_max_age_s ({self.overview_max_age_s:g}): a list is shared for "
                "overview_max_age_s and never served older than overview_max_stale_s"
            )
            raise ValueError(msg)
        return self

    @property
    def base_url(self) -> str:
        """Where people reach the API: ``public_url``, else where it listens."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


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
    overview_max_stations: int = Field(
        default=200,
        ge=0,
        description="gauges the national overview draws one by one; past it, it links to the "
        "regencies' own overviews",
    )
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


class PublicSettings(Section):
    """The residents' pages (``siaga public serve``): no sign-in, served from memory."""

    file: Path = Field(
        default=Path("config/public.yaml"), description="which regencies publish, and what"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    refresh_s: float = Field(default=15.0, gt=0, description="pages rebuilt this often")
    max_age_s: int = Field(default=30, ge=0, description="phones and proxies may keep a page")
    stale_intervals: float = Field(
        default=3.0, gt=0, description="a reading older than this many report intervals is old"
    )
    stale_floor_s: float = Field(default=1800.0, ge=0, description="…and never sooner than this")
    cap_feed_url: str | None = Field(
        default=None,
        description="the CAP feed pages link (default: api.public_url's /api/v1/cap.atom when "
        "api.cap_feed_public)",
    )


class Settings(AlertsSettings):
    """Alerting's settings plus the API's, Grafana's and the residents' pages'."""

    api: ApiSettings = ApiSettings()
    grafana: GrafanaSettings = GrafanaSettings()
    public: PublicSettings = PublicSettings()

    def cap_feed_url(self) -> str | None:
        """The CAP feed residents' pages link."""
        if self.public.cap_feed_url:
            return self.public.cap_feed_url
        if self.api.cap_feed_public:
            return f"{self.api.base_url}/api/v1/cap.atom"
        return None
