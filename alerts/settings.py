"""Alerting's settings: the data plane's tree plus the incident database and the engine."""

from __future__ import annotations

from pydantic import Field

from ingest.settings import Section
from ingest.settings import Settings as IngestSettings


class DatabaseSettings(Section):
    """The SQL database of incidents, notifications and users (SQLite or PostgreSQL)."""

    url: str = Field(
        default="sqlite:///var/siaga.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )


class Settings(IngestSettings):
    """The data plane's settings plus alerting's."""

    database: DatabaseSettings = DatabaseSettings()
