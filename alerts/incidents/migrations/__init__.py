"""Alembic migrations of the incident database; run with :func:`upgrade`."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent

OLD_NOTIFY_HEAD = "0002_notify"
"""The notification revision's id while it was a second head beside ``0002_api_accounts``."""


def adopt_old_heads(connection: sa.Connection) -> None:
    """Rewrite the revisions a database recorded under the two-headed chain to the linear one.

    Both heads recorded: everything up to ``0003_notify`` is there. Only ``0002_notify``: the
    database goes back to ``0001_incidents`` for Alembic, which then adds the API's tables and
    finds the notification tables made (``0003_notify`` keeps them). Any other database is
    left untouched. Runs in the caller's transaction, before Alembic reads the versions.
    """
    if not sa.inspect(connection).has_table("alembic_version"):
        return
    version = sa.table("alembic_version", sa.column("version_num", sa.String))
    recorded = set(connection.scalars(sa.select(version.c.version_num)))
    if OLD_NOTIFY_HEAD not in recorded:
        return
    adopted = "0003_notify" if "0002_api_accounts" in recorded else "0001_incidents"
    connection.execute(sa.delete(version))
    connection.execute(sa.insert(version).values(version_num=adopted))


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(HERE / "versions"))
    # ``%`` is ini interpolation syntax: escape it so passwords with ``%`` survive.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` up to ``revision`` (all heads by default)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` back to ``revision`` (``base`` for empty)."""
    command.downgrade(alembic_config(url), revision)
