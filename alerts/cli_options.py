"""Options shared by the commands that serve a running platform (``siaga alerts|users|devices``)
and by those that read recorded readings (``siaga alerts backtest|verify``, ``siaga forecast``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
