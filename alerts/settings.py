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
    # -- the running engine (siaga alerts run) --
    client_id: str = Field(
        default="siaga-alerts",
        description="MQTT client id of the engine's own persistent session, outside the ingest "
        "group; the two engines of a hot-standby pair share it (and the leader lock named "
        "after it); engines of different scopes need different ones",
    )
    spool_dir: Path = Field(
        default=Path("var/spool-alerts"),
        description="where alert events wait while InfluxDB is down",
    )
    commit_interval_s: float = Field(
        default=0.02, gt=0, description="the longest a reading waits before its commit"
    )
    commit_max_messages: int = Field(
        default=5000, gt=0, description="messages evaluated per commit at most"
    )
    checkpoint_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="how often the engine's state is made durable and the messages evaluated "
        "since are acknowledged (transitions are committed every commit_interval_s)",
    )
    checkpoint_max_messages: int = Field(
        default=20_000,
        gt=0,
        le=60_000,
        description="a checkpoint at the latest after this many messages (below the broker's "
        "65,535 unacknowledged messages per session)",
    )
    leader_poll_s: float = Field(
        default=1.0, gt=0, description="how often a standby tries to take the leader lock"
    )
    leader_check_s: float = Field(
        default=2.0, gt=0, description="how often the leader checks it still holds the lock"
    )


class Settings(IngestSettings):
    """The data plane's settings plus alerting's."""

    database: DatabaseSettings = DatabaseSettings()
    alerts: AlertsSettings = AlertsSettings()
