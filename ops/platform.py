"""Which platform a command serves: ``siaga users``, ``siaga alerts`` and ``siaga devices``.

``siaga up`` records what it runs in its data directory (``platform.json``: the database, the
broker, the settings file; no secret). The commands beside it look for a data directory in this
order: ``--data-dir``, then ``SIAGA_DATA_DIR``, then ``./.siaga`` when present; without one
they use the settings file alone. The environment (``SIAGA_DATABASE__URL``…) still wins over a
data directory's record, which wins over the settings file. Each command then says, on stderr,
which database and broker it used, and a database that is not there is one line saying so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ingest.errors import ConfigError
from ingest.settings import DEFAULT_CONFIG
from ops.datadir import DataDir
from ops.errors import ServerError
from ops.settings import Settings, load

DATA_DIR_ENV = "SIAGA_DATA_DIR"
DEFAULT_DATA_DIR = Path(".siaga")


@dataclass(frozen=True)
class Platform:
    """The settings a command uses, and where they came from (one line for people)."""

    settings: Settings
    source: str
    uses_database: bool = True

    def describe(self) -> str:
        """``database …, broker … (data directory …)``: what the command talks to."""
        broker = f"broker {without_credentials(self.settings.mqtt.url)}"
        if not self.uses_database:
            files = self.settings.broker
            return (
                f"{broker}, its password file {files.password_file.absolute()} and ACL "
                f"{files.acl_file.absolute()} ({self.source})"
            )
        database = self.settings.database.url
        sqlite = sqlite_path(database)
        shown = str(sqlite) if sqlite is not None else without_credentials(database)
        return f"database {shown}, {broker} ({self.source})"


def without_credentials(url: str) -> str:
    """``url`` without a user name or password (safe to print and to record)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or SQLite in memory)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if not parsed.drivername.startswith("sqlite") or parsed.database in {None, "", ":memory:"}:
        return None
    return Path(parsed.database or "").absolute()


def find_data_dir(
    option: Path | None, environ: Mapping[str, str], cwd: Path
) -> tuple[DataDir, str] | None:
    """The data directory a command serves and how it was found (None: the settings alone)."""
    if option is not None:
        return DataDir(option.absolute()), f"data directory {option.absolute()}, --data-dir"
    if environ.get(DATA_DIR_ENV):
        found = Path(environ[DATA_DIR_ENV]).absolute()
        return DataDir(found), f"data directory {found}, {DATA_DIR_ENV}"
    local = cwd / DEFAULT_DATA_DIR
    if local.is_dir():
        return DataDir(local.absolute()), f"data directory {local.absolute()}"
    return None


def _overrides(record: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The record's sections, without the keys the environment sets (the environment wins)."""
    sections: dict[str, Any] = {}
    for section, values in record.items():
        if not isinstance(values, dict):
            continue
        kept = {
            key: value
            for key, value in values.items()
            if f"SIAGA_{section.upper()}__{key.upper()}" not in environ
        }
        if kept:
            sections[section] = kept
    return sections


def platform_settings(
    config: Path | None,
    data_dir: Path | None,
    *,
    create: bool = False,
    database: bool = True,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Platform:
    """The settings of the platform a command serves (see the module's docstring).

    Args:
        config: ``--config``; else the one ``siaga up`` was started with, else the default.
        data_dir: ``--data-dir``.
        create: A missing SQLite database may be created (``siaga users add``), when its
            directory exists.
        database: The command uses the database (``siaga devices`` does not).
        environ: The environment (default: the process's).
        cwd: Where ``./.siaga`` is looked for (default: the working directory).

    Raises:
        ConfigError: One line: the settings are wrong, the data directory holds no platform,
            or the database is not there or cannot be read.
    """
    environ = os.environ if environ is None else environ
    found = find_data_dir(data_dir, environ, Path.cwd() if cwd is None else cwd)
    overrides: dict[str, Any] = {}
    if found is None:
        named = config or environ.get("SIAGA_CONFIG")
        source = (
            f"settings {Path(named).absolute()}"
            if named
            else f"settings {DEFAULT_CONFIG.absolute()}"
            if DEFAULT_CONFIG.exists()
            else "built-in default settings"
        )
    else:
        directory, source = found
        try:
            record = directory.read_platform()
        except ServerError as exc:
            raise ConfigError(str(exc)) from None
        if record is None:
            raise ConfigError(
                f"no Siaga platform in {directory.root}: `siaga up --data-dir {directory.root}` "
                f"records one there ({directory.platform_file} is missing)"
            )
        if config is None and record.get("config"):
            config = Path(record["config"])
        overrides = _overrides(record, environ)
    settings = load(config, **overrides)
    if database:
        check_database(settings.database.url, source, create=create)
    return Platform(settings, source, database)


def check_database(url: str, source: str, *, create: bool = False) -> None:
    """Refuse, in one line, a SQLite database that is not there or cannot be read.

    Raises:
        ConfigError: Saying what is missing, where, and where that place came from.
    """
    path = sqlite_path(url)
    if path is None:
        return
    hint = "start `siaga up`, or name the platform with --data-dir DIR or SIAGA_DATA_DIR"
    if not path.exists():
        if create and path.parent.is_dir():
            return
        raise ConfigError(f"no Siaga database at {path} ({source}); {hint}")
    if not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"cannot read and write the Siaga database {path} ({source})")
