"""``siaga alerts``: argument parsing only; the work is in :mod:`alerts.backtest` and the engine.

    siaga alerts backtest --readings recorded.csv --json
    siaga alerts backtest --readings recorded.csv --stations config/stations.yaml --rules r.yaml
    siaga alerts backtest --from 2025-03-10T00:00:00+07:00 --to 2025-03-26T00:00:00+07:00

``siaga`` adds this sub-app with ``app.add_typer(alerts_app, name="alerts")`` and tells it the
most derived settings class with :func:`alerts.cli_options.use_settings` (imports point one
way: alerts cannot import ops).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from alerts.cli_options import (
    DATA_DIR,
    ConfigOption,
    DataDirOption,
    FromOption,
    ReadingsCsvOption,
    ToOption,
    load_alert_settings,
    platform_settings,
)

if TYPE_CHECKING:
    from rich.console import Console

    from alerts.backtest import Backtest
    from alerts.settings import Settings
    from devices.readings import Reading
    from devices.readings_csv import ReadingsCsv
    from devices.stations import StationRegistry

alerts_app = typer.Typer(
    help="Flood alerts: the engine, incidents, and backtests over recorded readings.",
    no_args_is_help=True,
)


@alerts_app.callback()
def alerts_main(data_dir: DataDirOption = None) -> None:
    """Flood alerts: the engine, incidents, and backtests over recorded readings."""
    DATA_DIR[0] = data_dir


LanguageOption = Annotated[str, typer.Option("--lang", help="id (Bahasa Indonesia) or en.")]


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(2)


# -- backtest (the engine helper's) -----------------------------------------------------------


@alerts_app.command("backtest")
def backtest(  # noqa: PLR0917 - typer passes every option
    readings: ReadingsCsvOption = None,
    stations: Annotated[
        Path | None, typer.Option(help="Registry file (config/stations.yaml format).")
    ] = None,
    rules: Annotated[
        Path | None, typer.Option(help="Rules file (default: alerts.rules_file).")
    ] = None,
    start: FromOption = None,
    end: ToOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
    all_stations: Annotated[
        bool | None,
        typer.Option(
            "--all-stations/--only-reporting",
            help="Judge every station of the registry, or only those with readings (default: "
            "all of a registry given with --stations, the reporting ones of the deployment's).",
        ),
    ] = None,
    language: LanguageOption = "id",
    config: ConfigOption = None,
) -> None:
    """Replay recorded readings through the live engine and print what it would have said."""

    from alerts.backtest import (  # noqa: PLC0415
        BacktestError,
        replay,
        stations_to_judge,
    )
    from alerts.rules.config import RulesFileError, load_rules  # noqa: PLC0415
    from devices.stations import StationFileError, load_stations  # noqa: PLC0415
    from devices.timestamps import TimestampError  # noqa: PLC0415
    from ingest.errors import ConfigError  # noqa: PLC0415

    chosen = _language(language)
    _one_source(readings, start, end)
    try:
        settings = load_alert_settings(config)
        registry = load_stations(stations or settings.stations.file)
        rules_config = load_rules(rules or settings.alerts.rules_file)
        recorded, skipped = recorded_readings(settings, registry, readings, start, end)
    except (
        BacktestError,
        ConfigError,
        RulesFileError,
        StationFileError,
        TimestampError,
    ) as exc:
        raise _fail(str(exc)) from None
    # The deployment's own registry named explicitly is still the deployment's own.
    given = stations is not None and stations.resolve() != settings.stations.file.resolve()
    judged = stations_to_judge(registry=str(stations) if given else None, asked=all_stations)
    with _progress_bar(len(recorded)) as progress:
        result = replay(
            recorded,
            registry,
            rules_config,
            all_stations=judged.all_stations,
            tick_s=settings.alerts.backtest_tick_s,
            late_lag_s=settings.alerts.late_lag_s,
            progress=progress,
        )
    skipped_rows = {f"rows: {why}": count for why, count in skipped.items() if count}
    if recorded and not result.readings:
        # Readings, and none of them usable: wrong station ids or metric names, most likely.
        # An empty answer would read as "the rules found nothing".
        raise _fail(
            f"no reading could be replayed: {_said(_left_out(result, {}))} (see --stations "
            "and the registry's metric names)"
        )
    if as_json:
        _print_json(result)
        left_out = _left_out(result, skipped_rows)
        # A note for the person at the terminal, on stderr; a program reading the events (stdout,
        # or both streams merged, as test runners and `2>&1` do) gets events and nothing else.
        if sys.stderr.isatty():
            said = f"backtest: {result.readings} readings replayed"
            if left_out:
                said += f"; left out: {_said(left_out)}"
            typer.echo(f"{said}\n{_evaluated(result, registry, judged.why)}", err=True)
    else:
        evaluated = _evaluated(result, registry, judged.why)
        _print_table(result, skipped_rows, registry, chosen, evaluated)


def _one_source(readings: Path | None, start: str | None, end: str | None) -> None:
    """Refuse all but a readings file, or both ``--from`` and ``--to``."""
    if (readings is None) == (start is None and end is None):
        raise _fail("give either --readings FILE or --from/--to")
    if readings is None and (start is None or end is None):
        raise _fail("give both --from and --to")


def recorded_readings(
    settings: Settings,
    registry: StationRegistry,
    readings: Path | None,
    start: str | None,
    end: str | None,
) -> tuple[list[Reading], dict[str, int]]:
    """The readings of the CSV file ``readings``, else InfluxDB's from ``start`` to ``end``;
    and the file's rows skipped, by why.

    Raises:
        BacktestError: The file cannot be read or is not a readings CSV.
        TimestampError: ``start`` or ``end`` is not an RFC 3339 time.
    """
    import asyncio  # noqa: PLC0415

    from devices.timestamps import parse_timestamp_ns  # noqa: PLC0415

    if readings is not None:
        parsed = read_readings_file(readings)
        return parsed.readings, parsed.skipped()
    assert start is not None
    assert end is not None
    start_ns, end_ns = parse_timestamp_ns(start), parse_timestamp_ns(end)
    return asyncio.run(_from_influx(settings, registry, start_ns, end_ns)), {}


def read_readings_file(path: Path) -> ReadingsCsv:
    """A readings CSV file (:func:`alerts.backtest.parse_csv`).

    Raises:
        BacktestError: It cannot be read, is not UTF-8, or is not a readings CSV.
    """
    from alerts.backtest import BacktestError, parse_csv  # noqa: PLC0415

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BacktestError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise BacktestError(f"{path}: byte {exc.start} is not UTF-8") from None
    return parse_csv(text, str(path))


@contextmanager
def _progress_bar(total: int) -> Iterator[Callable[[int], None] | None]:
    """A bar on stderr while readings are replayed, for a person at a terminal (nothing for a
    program, and nothing for a run too short to watch)."""
    if not sys.stderr.isatty() or total < 50_000:
        yield None
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress  # noqa: PLC0415

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("replaying readings", total=total)
        yield lambda done: bar.update(task, completed=done)


def _evaluated(result: Backtest, registry: StationRegistry, why: str, named: int = 12) -> str:
    """Which stations were judged and why: by name, when few enough to read."""
    count = len(result.evaluated)
    said = f"{count} stations evaluated, {why}"
    if 0 < count <= named:
        names = [
            station.name if (station := registry.get(i)) is not None else i
            for i in result.evaluated
        ]
        said += ": " + ", ".join(names)
    return said


def _said(counts: dict[str, int]) -> str:
    """``{"why": n}`` as "n why, ..." for a sentence."""
    return ", ".join(f"{count} {why}" for why, count in counts.items())


def _left_out(result: Backtest, skipped_rows: dict[str, int]) -> dict[str, int]:
    """What of the input was not replayed, and why, for the summary."""
    left_out = dict(skipped_rows)
    if result.unknown:
        left_out["readings of unknown stations"] = result.unknown
    for reason, count in sorted(result.rejected.items()):
        left_out[f"values refused: {reason}"] = count
    return left_out


async def _from_influx(
    settings: Settings, registry: StationRegistry, start_ns: int, end_ns: int
) -> list[Reading]:
    from alerts.backtest import read_influx  # noqa: PLC0415
    from ingest.storage.influx import InfluxStorage, registry_tags  # noqa: PLC0415

    async with InfluxStorage(settings.influx, registry_tags(registry)) as storage:
        return await read_influx(storage, start_ns, end_ns)


def _print_json(result: Backtest) -> None:
    import orjson  # noqa: PLC0415

    from alerts.backtest import event_record  # noqa: PLC0415

    for event in result.events:
        typer.echo(orjson.dumps(event_record(event)).decode())


def _print_table(
    result: Backtest,
    skipped_rows: dict[str, int],
    registry: StationRegistry,
    language: Any,
    evaluated: str,
) -> None:
    from rich.table import Table  # noqa: PLC0415

    from alerts.backtest import event_record  # noqa: PLC0415
    from alerts.notify.message import summarise  # noqa: PLC0415

    console = _console()
    table = Table("at", "station", "kind", "rule", "change", "summary")
    for column in table.columns[:4]:
        column.no_wrap = True  # cut, "2025-03-0…" names no moment; the detail wraps instead
    for event in result.events:
        record = event_record(event)
        if "previous" in record:
            change = f"{record['previous']} → {record['level']}"
        else:
            change = "fires" if event.firing else "clears"
        if "expected_at" in record:
            change += f" (expected {record['expected_at']})"
        said = summarise(event, language, registry)
        table.add_row(record["at"], record["station"], record["kind"], event.rule, change, said)
    console.print(table)
    summary = Table("summary", "count")
    summary.add_row("readings replayed", str(result.readings))
    for why, count in _left_out(result, skipped_rows).items():
        summary.add_row(why, str(count))
    for kind, count in sorted(result.per_kind().items()):
        summary.add_row(f"{kind} events", str(count))
    flaps = result.flaps()
    summary.add_row("flaps (a level change undone within 1 h)", str(sum(flaps.values())))
    for station, count in sorted(flaps.items()):
        summary.add_row(f"  flaps at {station}", str(count))
    again = result.reescalations()
    summary.add_row("re-escalations (a level entered again within a day)", str(sum(again.values())))
    for station, count in sorted(again.items()):
        summary.add_row(f"  re-escalations at {station}", str(count))
    console.print(summary)
    console.print(evaluated)


@alerts_app.command("verify")
def verify(  # noqa: PLR0917 - typer passes every option
    readings: ReadingsCsvOption = None,
    events: Annotated[
        Path | None,
        typer.Option(help="Events as JSON lines (siaga alerts/forecast backtest --json)."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Read readings and events from InfluxDB.")
    ] = None,
    end: ToOption = None,
    stations: Annotated[
        Path | None, typer.Option(help="Registry file (default: stations.file).")
    ] = None,
    horizon_h: Annotated[
        float | None, typer.Option(help="How far ahead a warning may come (forecast.horizon_h).")
    ] = None,
    tolerance_h: Annotated[float, typer.Option(help="Slack past the horizon.")] = 1.0,
    since: Annotated[
        str | None,
        typer.Option(
            help="Score from this RFC 3339 time on (a forecast backtest's --train-until)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Hits, misses, false alarms, POD, FAR, CSI and lead times of the warnings, per station,
    level and kind (forecast, upstream, level), against the crossings the readings show."""
    import asyncio  # noqa: PLC0415

    import orjson  # noqa: PLC0415

    from alerts.backtest import BacktestError  # noqa: PLC0415
    from alerts.verify import verify as run_verify  # noqa: PLC0415
    from alerts.verify import warning_from_record  # noqa: PLC0415
    from devices.stations import StationFileError, load_stations  # noqa: PLC0415
    from devices.timestamps import TimestampError, parse_timestamp_ns  # noqa: PLC0415
    from ingest.errors import ConfigError  # noqa: PLC0415

    if (readings is None) == (start is None and end is None):
        raise _fail("give either --readings FILE --events FILE or --from/--to")
    if readings is not None and events is None:
        raise _fail("--readings needs --events (JSON lines of alert events)")
    if readings is None and (start is None or end is None):
        raise _fail("give both --from and --to")
    try:
        settings = load_alert_settings(config)
        registry = load_stations(stations or settings.stations.file)
        since_ns = parse_timestamp_ns(since) if since is not None else None
        if readings is not None and events is not None:
            recorded = read_readings_file(readings).readings
            try:
                lines = events.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise BacktestError(f"{events}: cannot read: {exc.strerror}") from None
            warnings = []
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    found = warning_from_record(orjson.loads(line))
                except (orjson.JSONDecodeError, KeyError, TypeError, TimestampError) as exc:
                    raise BacktestError(f"{events}: line {number}: not an event: {exc}") from None
                if found is not None:
                    warnings.append(found)
        else:
            assert start is not None
            assert end is not None
            start_ns, end_ns = parse_timestamp_ns(start), parse_timestamp_ns(end)
            recorded, warnings = asyncio.run(_verify_inputs(settings, registry, start_ns, end_ns))
    except (BacktestError, ConfigError, StationFileError, TimestampError) as exc:
        raise _fail(str(exc)) from None
    results = run_verify(
        recorded,
        warnings,
        registry,
        horizon_s=(horizon_h or settings.forecast.horizon_h) * 3600,
        tolerance_s=tolerance_h * 3600,
        since_ns=since_ns,
    )
    if as_json:
        for result in results:
            typer.echo(orjson.dumps(result.record()).decode())
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table(
        "station", "level", "kind", "hits", "misses", "false alarms", "POD", "FAR", "CSI",
        "lead h (median, min-max)",
    )  # fmt: skip
    for result in results:
        record = result.record()
        leads = record["lead_h"]
        spread = f"{record['lead_h_median']} ({min(leads)}-{max(leads)})" if leads else "-"
        table.add_row(
            result.station, result.level.name, result.kind, str(record["hits"]),
            str(record["misses"]), str(record["false_alarms"]), _ratio(record["pod"]),
            _ratio(record["far"]), _ratio(record["csi"]), spread,
        )  # fmt: skip
    _console().print(table)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


async def _verify_inputs(
    settings: Settings, registry: StationRegistry, start_ns: int, end_ns: int
) -> tuple[list[Reading], list[Any]]:
    """Readings and alert events of ``[start, end)`` from InfluxDB."""
    from alerts.backtest import read_influx  # noqa: PLC0415
    from alerts.verify import Warning  # noqa: PLC0415
    from devices.levels import Level  # noqa: PLC0415
    from ingest.storage.influx import InfluxStorage, registry_tags  # noqa: PLC0415

    async with InfluxStorage(settings.influx, registry_tags(registry)) as storage:
        readings = await read_influx(storage, start_ns, end_ns)
        records = await storage.alerts(start_ns, end_ns, limit=1_000_000)
    warnings = [
        Warning(r.ts_ns, r.station_id, r.kind, Level[r.level], r.firing)
        for r in records
        if r.level in Level.__members__
    ]
    return readings, warnings


# -- the engine and its incidents (the incidents helper's) ------------------------------------


@alerts_app.command("run")
def run(config: ConfigOption = None) -> None:
    """Run the alert engine until SIGTERM: MQTT → rules → incidents (SQL) → acknowledge."""
    import asyncio  # noqa: PLC0415

    from alerts.incidents.errors import IncidentStoreError, LeadershipLostError  # noqa: PLC0415
    from alerts.runtime import run_alerts  # noqa: PLC0415
    from ingest.errors import ConfigError  # noqa: PLC0415
    from ingest.logs import configure_logging  # noqa: PLC0415

    try:
        settings = load_alert_settings(config)
        configure_logging(settings.log.level, settings.log.format)
        asyncio.run(run_alerts(settings))
    except LeadershipLostError as exc:
        typer.secho(f"stopped: {exc}; another engine leads now", err=True)
        raise typer.Exit(3) from None
    except (ConfigError, IncidentStoreError) as exc:
        raise _fail(str(exc)) from None


@alerts_app.command("notify")
def notify(config: ConfigOption = None) -> None:
    """Run the notifier alone (dispatch and send), beside engines with notify.in_engine false.

    At the ingest benchmark's half load the notifier meets its latency target only in a
    process of its own (docs/benchmarks.md); its leader lock keeps one sender at a time.
    """
    import asyncio  # noqa: PLC0415
    import contextlib  # noqa: PLC0415
    import signal  # noqa: PLC0415

    from alerts.incidents.errors import IncidentStoreError  # noqa: PLC0415
    from alerts.notify.runtime import run_notifier  # noqa: PLC0415
    from ingest.errors import ConfigError  # noqa: PLC0415
    from ingest.logs import configure_logging  # noqa: PLC0415

    async def until_stopped(settings: Settings) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        task = asyncio.create_task(run_notifier(settings), name="siaga.alerts.notify")
        stopping = asyncio.create_task(stop.wait(), name="siaga.alerts.notify.stop")
        done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if task in done:
            await task  # the notifier ended by itself: re-raise what ended it
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        settings = load_alert_settings(config)
        configure_logging(settings.log.level, settings.log.format)
        asyncio.run(until_stopped(settings))
    except (ConfigError, IncidentStoreError) as exc:
        raise _fail(str(exc)) from None


def _with_store(config: Path | None, action: Any) -> Any:
    """Run ``action(store, registry)`` on the platform's incident database (migrated first)."""
    import asyncio  # noqa: PLC0415

    from alerts.incidents.errors import IncidentStoreError  # noqa: PLC0415
    from alerts.incidents.store import SqlIncidentStore  # noqa: PLC0415
    from devices.stations import StationFileError, load_stations  # noqa: PLC0415
    from ingest.errors import ConfigError  # noqa: PLC0415

    settings = platform_settings(config, DATA_DIR[0])

    async def go() -> Any:
        registry = load_stations(settings.stations.file)
        async with SqlIncidentStore(settings.database.url) as store:
            return await action(store, registry)

    try:
        return asyncio.run(go())
    except (ConfigError, IncidentStoreError, StationFileError) as exc:
        raise _fail(str(exc)) from None


def _language(text: str) -> Any:
    if text not in {"id", "en"}:
        raise _fail(f"--lang must be id or en (got {text!r})")
    return text


@alerts_app.command("list")
def list_incidents(
    show_all: Annotated[
        bool, typer.Option("--all", help="Resolved incidents too, not only open ones.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of incidents.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 1000,
    language: LanguageOption = "id",
    config: ConfigOption = None,
) -> None:
    """Incidents, most recently changed first (open ones only unless --all)."""
    from alerts.incidents.present import LIST_COLUMNS, incident_json, incident_line  # noqa: PLC0415
    from alerts.incidents.records import IncidentFilter  # noqa: PLC0415

    chosen = _language(language)

    async def listed(store: Any, registry: StationRegistry) -> Any:
        return registry, await store.list(IncidentFilter(active_only=not show_all, limit=limit))

    registry, incidents = _with_store(config, listed)
    if as_json:
        import orjson  # noqa: PLC0415

        typer.echo(orjson.dumps([incident_json(i) for i in incidents]).decode())
        return
    if not incidents:
        typer.echo("no incidents" if show_all else "no open incidents")
        return
    from rich.table import Table  # noqa: PLC0415

    table = Table(*LIST_COLUMNS)
    for incident in incidents:
        table.add_row(*incident_line(incident, registry, chosen))
    _console().print(table)


def _console() -> Console:
    """A console as wide as the terminal, or 200 columns into a file or a pipe (rich's 80 would
    cut timestamps and station ids there)."""
    from rich.console import Console  # noqa: PLC0415

    return Console(width=None if sys.stdout.isatty() else 200)


@alerts_app.command("show")
def show(
    incident_id: Annotated[int, typer.Argument(metavar="ID", help="The incident's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    language: LanguageOption = "id",
    config: ConfigOption = None,
) -> None:
    """One incident with every transition and the reading that caused it."""
    from alerts.incidents.present import incident_json, summary  # noqa: PLC0415
    from alerts.model import IncidentState  # noqa: PLC0415
    from alerts.notify.message import summarise  # noqa: PLC0415

    chosen = _language(language)

    async def found(store: Any, registry: StationRegistry) -> Any:
        return registry, await store.get(incident_id)

    registry, incident = _with_store(config, found)
    if incident is None:
        raise _fail(f"no incident {incident_id}")
    document = incident_json(incident, with_transitions=True)
    if as_json:
        import orjson  # noqa: PLC0415

        typer.echo(orjson.dumps(document).decode())
        return
    typer.echo(f"{'summary':>12}: {summary(incident, registry, chosen)}")
    for key in ("id", "station", "rule", "kind", "state", "severity", "opened", "updated"):
        typer.echo(f"{key:>12}: {document[key]}")
    if document["resolved"]:
        typer.echo(f"{'resolved':>12}: {document['resolved']}")
    ack = document["acknowledged"]
    if ack:
        typer.echo(f"{'acknowledged':>12}: by {ack['by']} at {ack['at']} {ack['comment']}".rstrip())
    if document["assignee"]:
        typer.echo(f"{'assignee':>12}: {document['assignee']}")
    labels = ", ".join(f"{k}={v}" for k, v in sorted(document["labels"].items()))
    typer.echo(f"{'labels':>12}: {labels}")
    typer.echo("transitions:")
    for transition, record in zip(incident.transitions, document["transitions"], strict=True):
        event = record["event"]
        value = f" value={event['value']}" if "value" in event else ""
        said = summarise(
            transition.event,
            chosen,
            registry,
            labels=incident.labels,
            resolved=transition.state is IncidentState.RESOLVED,
        )
        typer.echo(
            f"  {event['at']}  {record['previous_state'] or '-'} → {record['state']}"
            f"  {event['level']}{value}  {said}"
        )


@alerts_app.command("ack")
def ack(
    incident_id: Annotated[int, typer.Argument(metavar="ID", help="The incident's id.")],
    by: Annotated[str, typer.Option("--by", help="Who acknowledges (a name).")],
    comment: Annotated[str, typer.Option("--comment", help="Why, or what is being done.")] = "",
    config: ConfigOption = None,
) -> None:
    """Acknowledge an incident: who, when (now) and an optional comment."""
    import time  # noqa: PLC0415

    from alerts.incidents.errors import IncidentNotFoundError  # noqa: PLC0415

    if not by.strip():
        raise _fail("--by needs a name")

    async def acknowledge(store: Any, _registry: StationRegistry) -> Any:
        try:
            return await store.acknowledge(incident_id, by, comment, time.time_ns())
        except IncidentNotFoundError:
            return None

    incident = _with_store(config, acknowledge)
    if incident is None:
        raise _fail(f"no incident {incident_id}")
    typer.echo(f"incident {incident.id} acknowledged by {by}")


# -- silences (the notify helper's: alerts/notify/cli.py) --------------------------------------


def _register_silences() -> None:
    from alerts.notify.cli import silence_app  # noqa: PLC0415

    alerts_app.add_typer(silence_app, name="silence")


_register_silences()
