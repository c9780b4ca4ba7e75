"""Alerting's settings: the data plane's tree plus the incident database and the engine."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ingest.settings import Section
from ingest.settings import Settings as IngestSettings


class DatabaseSettings(Section):
    """The SQL database of incidents, notifications and users (SQLite or PostgreSQL)."""

    url: str = Field(
        default="sqlite:///var/siaga.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )


class AlertsSettings(Section):
    """The alert engine (``siaga alerts run``) and its rules."""

    rules_file: Path | None = Field(
        default=Path("config/rules.yaml"),
        description="rule overrides; a missing file means the defaults (the registry alone)",
    )
    reload_interval_s: float = Field(default=2.0, gt=0)
    stations: list[str] | None = Field(
        default=None, description="evaluate only these stations (with regencies: either)"
    )
    regencies: list[str] | None = Field(
        default=None, description="evaluate only the stations of these regencies"
    )
    late_lag_s: float = Field(
        default=600.0, gt=0, description="readings older than this on arrival are marked late"
    )
    tick_interval_s: float = Field(
        default=10.0, gt=0, description="how often time-driven rules (no data) are judged"
    )
    health_window_s: float = Field(default=86400.0, gt=0)


class Settings(IngestSettings):
    """The data plane's settings plus alerting's."""

    database: DatabaseSettings = DatabaseSettings()
    alerts: AlertsSettings = AlertsSettings()
