"""What operators look at: the settings tree so far plus the HTTP API and Grafana."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from alerts.settings import Settings as AlertsSettings
from ingest.settings import Section


class ApiSettings(Section):
    """The HTTP API and web UI (``siaga serve``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = Field(
        default="http://127.0.0.1:8080",
        description="where people reach the API: the base of signed acknowledgement links",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="signs acknowledgement links; when unset, read from (or created in) "
        "secret_key_file so that every process on this host agrees",
    )
    secret_key_file: Path = Path("var/api-secret.key")
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

    def resolve_secret_key(self) -> bytes:
        """The signing key: configured, or read from the key file (created once, mode 0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.secret_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)
            if not path.read_text(encoding="ascii").strip():
                path.write_text(secrets.token_urlsafe(48), encoding="ascii")
        return path.read_text(encoding="ascii").strip().encode()


class Settings(AlertsSettings):
    """Alerting's settings plus the API's and Grafana's."""

    api: ApiSettings = ApiSettings()
