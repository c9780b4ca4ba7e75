"""Alerting's settings: the data plane's tree plus the incident database and the engine."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ingest.settings import Section
from ingest.settings import Settings as IngestSettings


class DatabaseSettings(Section):
    """The SQL database of incidents, notifications and users (SQLite or PostgreSQL)."""

    url: str = Field(
        default="sqlite:///var/siaga.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )


class NotifySettings(Section):
    """Notifications: the policy file, CAP identity, and how the sender retries."""

    policy_file: str = Field(default="config/alerts.yaml", description="Routing policy (YAML)")
    policy_reload_s: float = Field(default=5.0, gt=0)
    cap_sender: str = Field(default="siaga@bpbd.example.go.id", min_length=1)
    cap_status: Literal["Actual", "Exercise", "System", "Test", "Draft"] = "Actual"
    cap_radius_km: float = Field(default=5.0, gt=0)
    tick_s: float = Field(default=0.2, gt=0, description="Dispatcher/sender poll period")
    claim_limit: int = Field(default=200, gt=0)
    lease_s: float = Field(default=60.0, gt=0, description="A claimed delivery's send budget")
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    retry_multiplier: float = Field(default=2.0, ge=1)
    retry_jitter: Literal["equal", "full"] = "equal"
    delivery_deadline_s: float = Field(default=6 * 3600.0, gt=0)
    channel_concurrency: int = Field(default=8, gt=0)
    webhook_timeout_s: float = Field(default=5.0, gt=0)


class Settings(IngestSettings):
    """The data plane's settings plus alerting's."""

    database: DatabaseSettings = DatabaseSettings()
    notify: NotifySettings = NotifySettings()
