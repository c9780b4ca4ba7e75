"""Options shared by the commands that serve a running platform (``siaga alerts|users|devices``)
and by those that read recorded readings (``siaga alerts backtest|verify``, ``siaga forecast``),
and the settings they load: the ``siaga`` command names the most derived settings class with
:func:`use_settings`. Kept apart from ``alerts/cli.py`` so that the command modules it adds
(``alerts/notify/cli.py``) need not import it back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from alerts.settings import Settings

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The data directory of the `siaga up` to serve (default: $SIAGA_DATA_DIR, then "
        "./.siaga when present, else the settings file).",
    ),
]

# The group's ``--data-dir`` (``siaga alerts --data-dir DIR list``), for its commands to read.
DATA_DIR: list[Path | None] = [None]

ReadingsCsvOption = Annotated[
    Path | None, typer.Option(help="CSV with header station,ts,metric,value (any order).")
]
FromOption = Annotated[
    str | None, typer.Option("--from", help="Read InfluxDB from this RFC 3339 time.")
]
ToOption = Annotated[str | None, typer.Option("--to", help="... up to this RFC 3339 time.")]

_SETTINGS: list[type[Settings]] = []
PlatformLoader = Callable[..., "Settings"]
_PLATFORM: list[PlatformLoader] = []

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings YAML (default: config/siaga.yaml)."),
]


def use_settings(settings_cls: type[Settings], platform: PlatformLoader | None = None) -> None:
    """Read settings with this (derived) class: the ``siaga`` command passes the whole tree,
    and ``platform``, which finds the platform the incident commands serve (``--data-dir``)."""
    _SETTINGS[:] = [settings_cls]
    _PLATFORM[:] = [] if platform is None else [platform]


def platform_settings(
    config: Path | None, data_dir: Path | None, *, create: bool = False
) -> Settings:
    """The settings of the platform ``siaga alerts list/show/ack/silence`` serve.

    Args:
        config: ``--config``.
        data_dir: ``--data-dir``.
        create: The command may create a missing database (a silence is a first write).
    """
    if _PLATFORM:
        return _PLATFORM[0](config, data_dir, create=create)
    return load_alert_settings(config)


def load_alert_settings(config: Path | None) -> Settings:
    """The settings tree, through the class given to :func:`use_settings`."""
    from alerts.settings import Settings  # noqa: PLC0415
    from ingest.settings import load_settings  # noqa: PLC0415

    return load_settings(config, settings_cls=_SETTINGS[0] if _SETTINGS else Settings)
