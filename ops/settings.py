"""The whole settings tree: every package's sections plus the broker's files and the supervisor.

The ``siaga`` command loads this one (:func:`load`), so every process validates every section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from dashboards.settings import Settings as DashboardsSettings
from ingest.settings import Section, load_settings


class BrokerSettings(Section):
    """The broker's files that ``siaga devices`` maintains (Mosquitto format)."""

    password_file: Path = Path("var/broker/passwd")
    acl_file: Path = Path("var/broker/acl")
    pid_file: Path | None = Field(
        default=None, description="when set, the broker is sent SIGHUP after each change"
    )


class Settings(DashboardsSettings):
    """Every setting of every Siaga process."""

    broker: BrokerSettings = BrokerSettings()


def load(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the whole tree (see :func:`ingest.settings.load_settings`)."""
    return load_settings(config_file, settings_cls=Settings, **overrides)
