"""The ``siaga`` command. Wiring only: every subcommand calls into the packages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alerts.cli import alerts_app
from alerts.cli_options import DATA_DIR, DataDirOption
from alerts.cli_options import use_settings as use_alert_settings
from alerts.forecast_cli import forecast_app
from ingest.errors import ConfigError
from ingest.logs import configure_logging
from ops.errors import ServerError
from ops.settings import Settings as SiagaSettings
from ops.settings import load as load_settings
from simulators.cli import simulate_app

if TYPE_CHECKING:
    from ingest.quarantine import QuarantineFile
    from ops.devicectl import DeviceAdmin

app = typer.Typer(
    help=(
        "Siaga: river gauges over MQTT into InfluxDB, flood alerts to emergency staff, and an "
        "operator web UI."
    ),
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings YAML (default: config/siaga.yaml)."),
]


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def _platform(
    config: Path | None, data_dir: Path | None, *, create: bool = False, database: bool = True
) -> SiagaSettings:
    """The settings of the platform a management command serves; says which on stderr."""
    from ops.platform import platform_settings

    try:
        found = platform_settings(config, data_dir, create=create, database=database)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"siaga: {found.describe()}", err=True)
    return found.settings


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
    data_dir: Annotated[
        Path, typer.Option(help="Where everything started here keeps its data.")
    ] = Path(".siaga"),
    demo: Annotated[
        bool | None,
        typer.Option(
            "--demo/--no-demo",
            help="Play the way-tulang-bawang-flood scenario (default: on a new data directory).",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="The web UI's address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The web UI's port.")] = 8080,
    broker: Annotated[
        str | None,
        typer.Option(
            help="Use this MQTT 5 broker (mqtt://user:pass@host:port) instead of our own."
        ),
    ] = None,
    storage: Annotated[
        str, typer.Option(help="auto (InfluxDB when available), influx, or sqlite (embedded).")
    ] = "auto",
    demo_speed: Annotated[
        float, typer.Option(help="Simulated seconds per wall second of the demo.")
    ] = 3600.0,
) -> None:
    """Run the whole platform: broker, storage, ingest, alerts, web UI (and a demo flood)."""
    from ops.up import UpOptions, run_up

    if storage not in {"auto", "influx", "sqlite"}:
        raise _fail(f"--storage must be auto, influx or sqlite (got {storage!r})")
    try:
        settings = load_settings(config)
        configure_logging(settings.log.level, settings.log.format)
        options = UpOptions(
            data_dir=data_dir,
            demo=demo,
            config=config,
            web_host=host,
            web_port=port,
            broker_url=broker,
            storage=storage,  # type: ignore[arg-type]
            demo_speed=demo_speed,
        )
        run_up(settings, options, lambda line: typer.echo(line, err=True))
    except (ConfigError, ServerError) as exc:
        raise _fail(str(exc)) from None


devices_app = typer.Typer(
    help="The device registry and the broker's credentials: list, show, add, rotate, revoke.",
    no_args_is_help=True,
)
app.add_typer(devices_app, name="devices")


@devices_app.callback()
def devices_main(data_dir: DataDirOption = None) -> None:
    """The device registry and the broker's credentials: list, show, add, rotate, revoke."""
    DATA_DIR[0] = data_dir


def _admin(config: Path | None) -> DeviceAdmin:
    from devices import TopicScheme
    from ops.brokeradmin import BrokerFiles
    from ops.devicectl import DeviceAdmin

    settings = _platform(config, DATA_DIR[0], database=False)
    return DeviceAdmin(
        stations_file=settings.stations.file,
        devices_file=settings.stations.devices_file,
        broker=BrokerFiles(
            settings.broker.password_file, settings.broker.acl_file, settings.broker.pid_file
        ),
        topics=TopicScheme(settings.mqtt.topic_prefix),
        shared_group=settings.mqtt.shared_group,
    )


def _run_admin(action: Callable[[DeviceAdmin], str | None], config: Path | None) -> None:
    from ops.devicectl import DeviceAdminError

    try:
        message = action(_admin(config))
    except (ConfigError, DeviceAdminError) as exc:
        raise _fail(str(exc)) from None
    if message:
        typer.echo(message)


def _credential(account: str, password: str | None) -> str:
    if password is None:
        return f"{account}: registered (its network server publishes for it; no credential)"
    return f"{account}: MQTT password (shown once, store it in the device now):\n{password}"


@devices_app.command("list")
def devices_list(config: ConfigOption = None) -> None:
    """Every device, integration and worker account, with its station and state."""
    from rich.console import Console
    from rich.table import Table

    registry = _admin(config).load()
    table = Table("id", "kind", "station", "format", "state")
    for device in sorted(registry.devices.values(), key=lambda d: d.id):
        state = "revoked" if device.revoked else "active"
        table.add_row(device.id, "device", device.station, device.format, state)
    for integration in sorted(registry.integrations.values(), key=lambda i: i.id):
        state = "revoked" if integration.revoked else "active"
        table.add_row(integration.id, f"{integration.kind} integration", "", "", state)
    for worker in sorted(registry.workers.values(), key=lambda w: w.id):
        table.add_row(worker.id, "worker", "", "", "revoked" if worker.revoked else "active")
    console = Console()
    # Ids are what people copy into the next command: never cut them short to fit 80 columns.
    needed = console.measure(table, options=console.options.update_width(10_000)).maximum
    console.width = max(console.width, needed)
    console.print(table)


@devices_app.command("show")
def devices_show(account: str, config: ConfigOption = None) -> None:
    """One device's registry entry and its station."""
    registry = _admin(config).load()
    device = registry.devices.get(account)
    entry = device or registry.integrations.get(account) or registry.workers.get(account)
    if entry is None:
        raise _fail(f"no device, integration or worker named {account!r}")
    typer.echo(entry.model_dump_json(indent=2, exclude_defaults=True))
    if device is not None:
        station = registry.get(device.station)
        assert station is not None
        typer.echo(station.model_dump_json(indent=2, exclude_defaults=True))


@devices_app.command("add")
def devices_add(
    account: Annotated[str, typer.Argument(help="Device id (its MQTT user name).")],
    station: Annotated[str, typer.Option(help="The station it speaks for.")],
    payload_format: Annotated[
        str, typer.Option("--format", help="native, senml, ttn or chirpstack.")
    ] = "native",
    profile: Annotated[str | None, typer.Option(help="Device profile (field mapping).")] = None,
    application_id: Annotated[str | None, typer.Option(help="LoRaWAN application.")] = None,
    tenant_id: Annotated[str | None, typer.Option(help="The Things Stack tenant.")] = None,
    lorawan_device_id: Annotated[str | None, typer.Option(help="TTS device id.")] = None,
    dev_eui: Annotated[str | None, typer.Option(help="LoRaWAN DevEUI.")] = None,
    config: ConfigOption = None,
) -> None:
    """Register a device; native and SenML devices get an MQTT credential, shown once."""
    from pydantic import ValidationError

    from devices.registry import Device

    lorawan = None
    if application_id is not None:
        lorawan = {
            "application_id": application_id,
            "tenant_id": tenant_id,
            "device_id": lorawan_device_id,
            "dev_eui": dev_eui,
        }
    try:
        device = Device.model_validate(
            {
                "id": account,
                "station": station,
                "format": payload_format,
                "profile": profile,
                "lorawan": lorawan,
            }
        )
    except ValidationError as exc:
        raise _fail(f"invalid device: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
    _run_admin(lambda admin: _credential(account, admin.add_device(device)), config)


@devices_app.command("add-integration")
def devices_add_integration(
    account: str,
    kind: Annotated[str, typer.Option(help="ttn or chirpstack.")],
    application_id: Annotated[str, typer.Option(help="The LoRaWAN application.")],
    tenant_id: Annotated[str | None, typer.Option(help="The Things Stack tenant.")] = None,
    config: ConfigOption = None,
) -> None:
    """Register a network server's account for one application; its credential is shown once."""
    from devices.registry import Integration

    integration = Integration.model_validate(
        {"id": account, "kind": kind, "application_id": application_id, "tenant_id": tenant_id}
    )
    _run_admin(lambda admin: _credential(account, admin.add_integration(integration)), config)


@devices_app.command("add-worker")
def devices_add_worker(account: str, config: ConfigOption = None) -> None:
    """Register an ingest worker's account (subscribe only); its credential is shown once."""
    _run_admin(lambda admin: _credential(account, admin.add_worker(account)), config)


@devices_app.command("rotate")
def devices_rotate(account: str, config: ConfigOption = None) -> None:
    """Issue a new credential; the old one stops working when the broker reloads."""
    _run_admin(lambda admin: _credential(account, admin.rotate(account)), config)


@devices_app.command("revoke")
def devices_revoke(account: str, config: ConfigOption = None) -> None:
    """Revoke at once: credential and ACL removed, broker reloaded, history kept."""

    def revoke(admin: DeviceAdmin) -> str:
        admin.revoke(account)
        return f"{account}: revoked"

    _run_admin(revoke, config)


@devices_app.command("remove")
def devices_remove(account: str, config: ConfigOption = None) -> None:
    """Forget a device, integration or worker entirely."""

    def remove(admin: DeviceAdmin) -> str:
        admin.remove(account)
        return f"{account}: removed"

    _run_admin(remove, config)


@devices_app.command("sync")
def devices_sync(config: ConfigOption = None) -> None:
    """Rewrite the broker's password and ACL files from the registry and reload the broker."""

    def sync(admin: DeviceAdmin) -> str:
        reloaded = admin.sync()
        return "broker files written" + (
            ", broker reloaded" if reloaded else " (no pid file: reload the broker yourself)"
        )

    _run_admin(sync, config)


@devices_app.command("tls-init")
def devices_tls_init(
    host: Annotated[list[str], typer.Option(help="Names clients connect to (repeatable).")],
    directory: Annotated[Path, typer.Option(help="Where to write the PEM files.")] = Path(
        "var/broker/tls"
    ),
    days: Annotated[int, typer.Option(help="Validity of the certificates.")] = 825,
    port: Annotated[int, typer.Option(help="The TLS listener's port.")] = 8883,
    config: ConfigOption = None,
) -> None:
    """Make a CA and a server certificate, and print the broker's TLS listener configuration."""
    from ops.devicectl import init_tls

    admin = _admin(config)
    tls, lines = init_tls(directory, host, days, admin.broker, port)
    typer.echo(f"CA for devices: {tls.cafile} (keep {directory / 'ca.key'} offline)")
    typer.echo("mosquitto.conf:")
    typer.echo("\n".join(lines))


app.add_typer(simulate_app, name="simulate")

# -- the HTTP API and web UI (dashboards/api) -------------------------------------------------


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (api.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (api.port).")] = None,
) -> None:
    """Run the HTTP API and the web UI (uvicorn) until SIGTERM."""
    from dashboards.api.service import serve as run_serve

    try:
        settings = load_settings(config)
        configure_logging(settings.log.level, settings.log.format)
        asyncio.run(run_serve(settings, host, port))
    except ConfigError as exc:
        raise _fail(str(exc)) from None


public_app = typer.Typer(
    help="The residents' pages: one per regency, no sign-in.", no_args_is_help=True
)
app.add_typer(public_app, name="public")


@public_app.command("serve")
def public_serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (public.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (public.port).")] = None,
) -> None:
    """Serve the residents' pages (config/public.yaml) in a process of their own until SIGTERM."""
    from dashboards.public.service import serve_public

    try:
        settings = load_settings(config)
        configure_logging(settings.log.level, settings.log.format)
        _, loop = fast_loop()
        if loop == "uvloop":
            import uvloop

            uvloop.run(serve_public(settings, host, port))
        else:
            asyncio.run(serve_public(settings, host, port))
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def fast_loop() -> tuple[str, str]:
    """httptools and uvloop where installed (the residents' pages must take a surge)."""
    from dashboards.public.service import fast_http

    return fast_http()


users_app = typer.Typer(help="People who sign in to the API and web UI.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.callback()
def users_main(data_dir: DataDirOption = None) -> None:
    """People who sign in to the API and web UI."""
    DATA_DIR[0] = data_dir


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="viewer, operator or admin.")] = "viewer",
    regency: Annotated[
        list[str] | None,
        typer.Option(help="A regency the user sees and acts on (repeat for more)."),
    ] = None,
    province: Annotated[
        str | None, typer.Option(help="A province: every regency the registry puts in it.")
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="The password (default: generated and printed once).")
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a user; without --regency or --province they see the whole deployment.

    Without --password one is generated and printed this once.
    """
    from dashboards.api.accounts import AccountError, Role
    from dashboards.api.service import add_user
    from devices.scopes import Scope, ScopeError

    try:
        chosen = Role(role)
    except ValueError:
        raise _fail(f"--role must be viewer, operator or admin (got {role!r})") from None
    try:
        scope = Scope.of(regency or (), province)
        settings = _platform(config, data_dir or DATA_DIR[0], create=True)
        user, generated = add_user(settings, username, chosen, password, scope)
    except (ConfigError, AccountError, ScopeError) as exc:
        raise _fail(str(exc)) from None
    where = "" if user.scope.deployment_wide else f", {user.scope.describe()}"
    typer.echo(f"added {user.username} ({user.role.value}{where})")
    if generated is not None:
        typer.echo(f"password: {generated}")


@users_app.command("list")
def users_list(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """List users, their roles and scopes."""
    from dashboards.api.service import accounts_for

    try:
        found = accounts_for(_platform(config, data_dir or DATA_DIR[0])).list_users()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    for user in found:
        typer.echo(f"{user.username}\t{user.role.value}\t{user.scope.describe()}")


@users_app.command("remove")
def users_remove(
    username: str, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Remove a user and end their sessions."""
    from dashboards.api.service import accounts_for

    try:
        removed = accounts_for(_platform(config, data_dir or DATA_DIR[0])).remove_user(username)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if not removed:
        raise _fail(f"no user {username!r}")
    typer.echo(f"removed {username}")


# --- Grafana dashboards as code (dashboards/grafana) -------------------------------------------
from dashboards.grafana.cli import dashboards_app  # noqa: E402
from dashboards.grafana.cli import use_settings as use_dashboard_settings  # noqa: E402

app.add_typer(dashboards_app, name="dashboards")
use_dashboard_settings(SiagaSettings)
# -- alerts: the engine, incidents and backtests (alerts/cli.py) --------------------------------
app.add_typer(alerts_app, name="alerts")
app.add_typer(forecast_app, name="forecast")
use_alert_settings(SiagaSettings, platform=_platform)

spool_app = typer.Typer(
    help="What a damaged spool left in quarantine: inspect it, replay what is still readable.",
    no_args_is_help=True,
)
app.add_typer(spool_app, name="spool")
QuarantinePath = Annotated[
    Path | None,
    typer.Argument(
        help="A quarantine file, a quarantine directory, or a spool directory "
        "(default: spool.dir of the settings).",
        show_default=False,
    ),
]


def _quarantine(
    path: Path | None, config: Path | None
) -> tuple[SiagaSettings, list[QuarantineFile]]:
    from ingest.quarantine import inspect, quarantine_files

    settings = load_settings(config)
    where = path if path is not None else settings.spool.dir
    try:
        return settings, [inspect(file) for file in quarantine_files(where)]
    except OSError as exc:
        raise _fail(f"{where}: {exc.strerror or exc}") from None


@spool_app.command("inspect")
def spool_inspect(path: QuarantinePath = None, config: ConfigOption = None) -> None:
    """Show what quarantine files hold: records, readable or not, their sizes and offsets."""
    from devices.registry import load_registry
    from ingest.quarantine import describe, summary

    try:
        settings, files = _quarantine(path, config)
        registry = load_registry(settings.stations.file, settings.stations.devices_file)
    except (ConfigError, ValueError) as exc:
        raise _fail(str(exc)) from None

    def name_of(station_id: str) -> str:
        station = registry.get(station_id)
        return station.name if station is not None else f"{station_id} (not registered)"

    for file in files:
        typer.echo("\n".join(describe(file, name_of)))
    typer.echo(summary(files))


@spool_app.command("replay")
def spool_replay(path: QuarantinePath = None, config: ConfigOption = None) -> None:
    """Store what quarantine files still hold that decodes, as ingest would store it now."""
    from ingest.errors import StorageError
    from ingest.quarantine import replay_with_settings

    try:
        settings, files = _quarantine(path, config)
        report = asyncio.run(replay_with_settings(settings, files))
    except (ConfigError, StorageError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(report.said())


bench = typer.Typer(help="Benchmarks that measure Siaga against ceilings in the same run.")
app.add_typer(bench, name="bench")


@bench.command("api")
def bench_api(
    stations: Annotated[int, typer.Option(help="Stations in the registry.")] = 1000,
    days: Annotated[int, typer.Option(help="Days of 1-minute data for one station.")] = 90,
    repeats: Annotated[int, typer.Option(help="Requests per measurement.")] = 50,
    output: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here.")] = None,
) -> None:
    """Overview and 30-day chart latency (p95) next to the raw InfluxDB queries behind them."""
    from benchmarks.api import run_api_benchmark

    try:
        met = run_api_benchmark(stations=stations, days=days, repeats=repeats, output=output)
    except ServerError as exc:
        raise _fail(str(exc)) from None
    if not met:
        raise typer.Exit(1)


@bench.command("public")
def bench_public(
    seconds: Annotated[float, typer.Option(help="Length of each phase.")] = 10.0,
    api_rate: Annotated[float, typer.Option(help="Operators' API requests per second.")] = 20.0,
    connections: Annotated[int, typer.Option(help="wrk's keep-alive connections.")] = 64,
    threads: Annotated[int, typer.Option(help="wrk's threads.")] = 1,
) -> None:
    """The residents' page under a surge (wrk) while the operators' API p95 is measured."""
    from benchmarks.public import run_public_benchmark

    try:
        met = run_public_benchmark(
            seconds=seconds, api_rate=api_rate, connections=connections, threads=threads
        )
    except (ServerError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    if not met:
        raise typer.Exit(1)


@bench.command("ingest")
def bench_ingest(
    messages: Annotated[int, typer.Option(help="Messages to publish.")] = 200_000,
    stations: Annotated[int, typer.Option(help="Stations in the fleet.")] = 1000,
    output: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here.")] = None,
    trials: Annotated[int, typer.Option(help="Full-speed runs per contender; best counts.")] = 2,
    paced_s: Annotated[float, typer.Option(help="Seconds of the half-load latency run.")] = 20.0,
    soak_s: Annotated[float, typer.Option(help="Seconds of the memory soak (0: none).")] = 60.0,
    rounds: Annotated[
        int,
        typer.Option(
            help="Instead: this many rounds of broker ceiling, naive client and Siaga into one "
            "database, to show a rate that falls as data accumulates (0: the single run)."
        ),
    ] = 0,
    late_h: Annotated[
        float | None,
        typer.Option(
            help="Back-date readings this many hours (default: 48 with --rounds, else 0)."
        ),
    ] = None,
    worker_pythonpath: Annotated[
        Path | None, typer.Option(help="Run the worker from this checkout (another commit).")
    ] = None,
) -> None:
    """Sustained ingest rate and latency next to broker, InfluxDB and naive-client ceilings."""
    from benchmarks.ingest import run_ingest_benchmark

    try:
        run_ingest_benchmark(
            messages=messages,
            stations=stations,
            output=output,
            trials=trials,
            paced_s=paced_s,
            soak_s=soak_s,
            rounds=rounds,
            late_h=late_h,
            worker_pythonpath=worker_pythonpath,
        )
    except ServerError as exc:
        raise _fail(str(exc)) from None


@bench.command("ingest-cpu")
def bench_ingest_cpu(
    messages: Annotated[int, typer.Option(help="Messages per run.")] = 100_000,
    stations: Annotated[int, typer.Option(help="Stations in the fleet.")] = 1000,
    repeats: Annotated[int, typer.Option(help="Runs; the median counts.")] = 5,
    late_h: Annotated[float, typer.Option(help="Back-date readings this many hours.")] = 48.0,
    profile: Annotated[
        Path | None, typer.Option(help="Write a cProfile of the last run here.")
    ] = None,
) -> None:
    """The ingest worker's CPU per message, in process (no broker, no database)."""
    from benchmarks.ingest_cpu import measure

    measure(messages, stations, repeats, late_h, profile)


@bench.command("alerts")
def bench_alerts(
    stations: Annotated[int, typer.Option(help="Stations registered.")] = 10_000,
    readings: Annotated[int, typer.Option(help="Readings evaluated.")] = 200_000,
    batch: Annotated[int, typer.Option(help="Readings per delivery to the engine.")] = 500,
    trials: Annotated[int, typer.Option(help="Runs per contender; best counts.")] = 3,
    forecast: Annotated[
        bool, typer.Option(help="Also the engine with a fitted forecast model per station.")
    ] = False,
    latency_s: Annotated[
        float, typer.Option(help="Seconds of the publish → event latency run (0: none).")
    ] = 0.0,
    rate: Annotated[float, typer.Option(help="Messages/s offered in the latency run.")] = 17_800.0,
    postgres: Annotated[bool, typer.Option(help="Latency run on PostgreSQL, not SQLite.")] = False,
    webhook: Annotated[
        bool, typer.Option(help="Also: reading published -> webhook received, under load.")
    ] = False,
    webhook_rate: Annotated[
        float, typer.Option(help="Background readings/s (default: ingest's half load).")
    ] = 17_800.0,
    webhook_seconds: Annotated[float, typer.Option(help="How long the load runs.")] = 20.0,
) -> None:
    """Readings/s the alert engine evaluates on one core, next to a bare baseline; optionally
    publish → event latency (--latency-s) and publish → signed webhook latency (--webhook)."""
    from benchmarks.alerts import run_alerts_benchmark, run_latency_benchmark

    try:
        if readings:
            run_alerts_benchmark(
                stations=stations, readings=readings, batch=batch, trials=trials, forecast=forecast
            )
        if latency_s:
            run_latency_benchmark(stations, rate, latency_s, postgres=postgres)
        if webhook:
            from benchmarks.notify import run_notify_benchmark

            run_notify_benchmark(rate_per_s=webhook_rate, seconds=webhook_seconds)
    except ServerError as exc:
        raise _fail(str(exc)) from None


@bench.command("forecast")
def bench_forecast(
    fit_stations: Annotated[
        int, typer.Option(help="Also time fitting this many stations (0: no).")
    ] = 1000,
    fit_days: Annotated[float, typer.Option(help="... of this many days of 15-min data.")] = 365,
) -> None:
    """Forecast skill against persistence, interval coverage and warnings on the scenarios,
    forecast warnings in a dry fortnight, and the cost of fitting."""
    from benchmarks.forecast import run_forecast_benchmark

    run_forecast_benchmark(fit_stations, fit_days)


# -- siaga bench national (scale) ---------------------------------------------------------------


@bench.command("national")
def bench_national(
    stations: Annotated[int, typer.Option(help="Stations in the fleet.")] = 100_000,
    interval_s: Annotated[float, typer.Option(help="Each station's interval.")] = 10.0,
    duration_s: Annotated[
        float, typer.Option(help="How long the fleet publishes (3600: the hour's soak).")
    ] = 600.0,
    processes: Annotated[int, typer.Option(help="Fleet publishing processes.")] = 2,
    index: Annotated[str, typer.Option(help="InfluxDB index: tsi1 or inmem.")] = "tsi1",
    health_heartbeat_s: Annotated[
        float, typer.Option(help="Health snapshot heartbeat (60: every station every minute).")
    ] = 900.0,
    batch_max_points: Annotated[
        int | None, typer.Option(help="The worker's batch size (default: its setting).")
    ] = None,
    gzip: Annotated[bool, typer.Option(help="The worker gzips its InfluxDB writes.")] = True,
    output: Annotated[Path | None, typer.Option(help="Write the report (Markdown) here.")] = None,
) -> None:
    """A national fleet through one worker, broker and InfluxDB: load, memory, freshness."""
    from benchmarks.national import run_national_benchmark

    try:
        run_national_benchmark(
            stations,
            interval_s,
            duration_s,
            output,
            processes=processes,
            index=index,
            health_heartbeat_s=health_heartbeat_s,
            batch_max_points=batch_max_points,
            gzip=gzip,
        )
    except (ServerError, ValueError) as exc:
        raise _fail(str(exc)) from None
