"""The ``siaga`` command. Wiring only: every subcommand calls into the packages."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from ingest.errors import ConfigError, ServerError
from ingest.logs import configure_logging
from ingest.settings import load_settings

app = typer.Typer(
    help="Siaga: river gauges over MQTT into InfluxDB, with flood alerts.", no_args_is_help=True
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings YAML (default: config/siaga.yaml)."),
]


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(2)


@app.command()
def ingest(config: ConfigOption = None) -> None:
    """Run an ingest worker: MQTT → validation → InfluxDB (or the spool), until SIGTERM."""
    from ingest.runtime import run_ingest

    try:
        settings = load_settings(config)
        configure_logging(settings.log.level, settings.log.format)
        asyncio.run(run_ingest(settings))
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@app.command()
def up(
    config: ConfigOption = None,
    state_dir: Annotated[
        Path, typer.Option(help="Where servers started by Siaga keep their data.")
    ] = Path("var/local"),
) -> None:
    """Run Siaga with the broker and InfluxDB it finds, starting local ones where none answer."""
    from ingest.localrun import run_up

    try:
        settings = load_settings(config)
        configure_logging(settings.log.level, settings.log.format)
        asyncio.run(run_up(settings, state_dir))
    except (ConfigError, ServerError) as exc:
        raise _fail(str(exc)) from None


bench = typer.Typer(help="Benchmarks that measure Siaga against ceilings in the same run.")
app.add_typer(bench, name="bench")


@bench.command("ingest")
def bench_ingest(
    messages: Annotated[int, typer.Option(help="Messages to publish.")] = 200_000,
    stations: Annotated[int, typer.Option(help="Stations in the fleet.")] = 1000,
    output: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here.")] = None,
) -> None:
    """Sustained ingest rate and latency next to broker, InfluxDB and naive-client ceilings."""
    from ingest.bench import run_ingest_benchmark

    try:
        run_ingest_benchmark(messages=messages, stations=stations, output=output)
    except ServerError as exc:
        raise _fail(str(exc)) from None
