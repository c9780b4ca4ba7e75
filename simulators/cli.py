"""``siaga simulate``: argument parsing only; :mod:`simulators.commands` does the work.

    siaga simulate --scenario quiet-day --speed 600
    siaga simulate --broker mqtt://broker:1883 --credentials creds.yaml --scenario quiet-day
    siaga simulate fleet --stations 100000 --interval 10s --duration 60s --processes 2
    siaga simulate replay recorded.csv --speed 60 --shift-to-now

Options given before a subcommand (``--broker``, ``--credentials``, ``--topic-prefix``, the
registry files) apply to it as well. Speed is simulated seconds per wall second; ``inf`` runs
as fast as the broker acknowledges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from devices.topics import DEFAULT_PREFIX

DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"

simulate_app = typer.Typer(
    help="Field devices in software: flood scenarios, a national-scale fleet, replays.",
)


@dataclass(frozen=True, slots=True)
class _Common:
    broker: str
    credentials: Path | None
    topic_prefix: str
    stations_file: Path
    devices_file: Path


def _run(command: Callable[[], None]) -> None:
    # The machinery is imported here, on use: `siaga --help` and `siaga ingest` stay fast.
    from simulators.commands import CommandError  # noqa: PLC0415

    try:
        command()
    except CommandError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None


@simulate_app.callback(invoke_without_command=True)
def simulate(  # typer passes every option by name
    ctx: typer.Context,
    *,
    scenario: Annotated[
        str | None,
        typer.Option(help="Scenario name (config/scenarios/NAME.yaml) or file to run."),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per wall second; inf: as fast as possible.")
    ] = 60.0,
    start: Annotated[
        str | None,
        typer.Option(help="Simulated start, RFC 3339 (default: so the run ends at now)."),
    ] = None,
    broker: Annotated[
        str,
        typer.Option(
            envvar="SIAGA_MQTT__URL", help="Broker URL, mqtt://host:port (user:pass@ optional)."
        ),
    ] = DEFAULT_BROKER_URL,
    credentials: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON file: account -> password (default: no passwords)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Replace the scenario's seed.")] = None,
    topic_prefix: Annotated[
        str, typer.Option(envvar="SIAGA_MQTT__TOPIC_PREFIX", help="Native topic prefix.")
    ] = DEFAULT_PREFIX,
    stations_file: Annotated[Path, typer.Option(help="Stations registry.")] = Path(
        "config/stations.yaml"
    ),
    devices_file: Annotated[Path, typer.Option(help="Devices registry.")] = Path(
        "config/devices.yaml"
    ),
) -> None:
    """Run a scenario against the broker, or a subcommand (fleet, replay)."""
    ctx.obj = _Common(broker, credentials, topic_prefix, stations_file, devices_file)
    if ctx.invoked_subcommand is not None:
        return
    if scenario is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)

    def command() -> None:
        from simulators.commands import simulate_scenario  # noqa: PLC0415

        simulate_scenario(
            scenario=scenario,
            speed=speed,
            start=start,
            broker=broker,
            credentials=credentials,
            seed=seed,
            topic_prefix=topic_prefix,
            stations_file=stations_file,
            devices_file=devices_file,
        )

    _run(command)


@simulate_app.command()
def fleet(
    ctx: typer.Context,
    *,
    stations: Annotated[int, typer.Option(min=1, help="Fleet size.")] = 100_000,
    interval: Annotated[str, typer.Option(help="Each station's interval, e.g. 10s.")] = "10s",
    duration: Annotated[str, typer.Option(help="How long to publish, e.g. 60s.")] = "60s",
    processes: Annotated[int, typer.Option(min=1, help="Publishing processes.")] = 2,
    write_stations: Annotated[
        Path | None,
        typer.Option(
            help="Only write the fleet's stations file here (for the worker) and exit; from "
            "5,000 stations the stations go in a CSV beside it."
        ),
    ] = None,
    timestamps: Annotated[
        str,
        typer.Option(help="Reading times: scheduled (when due) or actual (when published)."),
    ] = "scheduled",
    window: Annotated[
        int, typer.Option(min=1, max=65534, help="Messages in flight per process.")
    ] = 2000,
) -> None:
    """Publish a national-scale synthetic fleet (fleet-000001 ...) for load.

    Stops at --duration even when behind schedule, and reports how far behind it ran.
    """
    common: _Common = ctx.obj

    def command() -> None:
        from simulators.commands import simulate_fleet  # noqa: PLC0415

        simulate_fleet(
            stations=stations,
            interval=interval,
            duration=duration,
            processes=processes,
            write_stations=write_stations,
            broker=common.broker,
            topic_prefix=common.topic_prefix,
            timestamps=timestamps,
            window=window,
        )

    _run(command)


@simulate_app.command()
def replay(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV: timestamp, station, metric, value.")],
    *,
    speed: Annotated[float, typer.Option(help="Times faster than recorded.")] = 1.0,
    shift_to_now: Annotated[
        bool, typer.Option(help="Shift all times so the replay ends now.")
    ] = False,
) -> None:
    """Replay a recorded series as native device messages."""
    common: _Common = ctx.obj

    def command() -> None:
        from simulators.commands import simulate_replay  # noqa: PLC0415

        simulate_replay(
            file=file,
            speed=speed,
            shift_to_now=shift_to_now,
            broker=common.broker,
            credentials=common.credentials,
            topic_prefix=common.topic_prefix,
            stations_file=common.stations_file,
            devices_file=common.devices_file,
        )

    _run(command)
