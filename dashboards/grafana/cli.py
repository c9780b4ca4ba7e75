"""``siaga dashboards``: build the Grafana provisioning tree, or push it to a running Grafana."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dashboards.settings import Settings
from ingest.errors import ConfigError

if TYPE_CHECKING:
    from devices.registry import Registry

dashboards_app = typer.Typer(
    help="Grafana dashboards generated from the station registry: build the tree, or push it.",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings YAML (default: config/siaga.yaml)."),
]
AtOption = Annotated[
    datetime | None,
    typer.Option(
        "--at",
        help="Draw threshold bands as in force at this moment (default: now), for reproducible "
        "builds.",
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"],
    ),
]


_SETTINGS: list[type[Settings]] = []


def use_settings(settings_cls: type[Settings]) -> None:
    """Read settings with this (derived) class: the ``siaga`` command passes the whole tree, so
    a settings file with every package's sections is accepted here too."""
    _SETTINGS[:] = [settings_cls]


def _load(config: Path | None) -> Settings:
    from ingest.settings import load_settings

    return load_settings(config, settings_cls=_SETTINGS[0] if _SETTINGS else Settings)


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def _registry(settings: Settings) -> Registry:
    from devices.registry import load_registry

    try:
        return load_registry(settings.stations.file, settings.stations.devices_file)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _at_ns(at: datetime | None) -> int:
    return time.time_ns() if at is None else int(at.timestamp() * 1e9)


def _tree(config: Path | None, at: datetime | None) -> dict[str, bytes]:
    from dashboards.grafana.build import build_tree

    settings = _load(config)
    registry = _registry(settings)
    return build_tree(
        registry.stations(), settings.grafana, settings.influx, _at_ns(at), registry.provinces()
    )


@dashboards_app.command("build")
def build(
    out: Annotated[Path, typer.Option(help="Where to write the tree.")] = Path("var/grafana"),
    at: AtOption = None,
    config: ConfigOption = None,
) -> None:
    """Write provisioning/datasources, provisioning/dashboards and json/ under --out."""
    from dashboards.grafana.build import write_tree

    try:
        tree = _tree(config, at)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    for path in write_tree(tree, out):
        typer.echo(str(path))


@dashboards_app.command("push")
def push(
    url: Annotated[str | None, typer.Option(help="Grafana's URL (default: grafana.url).")] = None,
    regencies: Annotated[
        bool,
        typer.Option(
            "--regencies/--no-regencies",
            help="Also a folder per regency, viewed by its team only (needs the Admin role).",
        ),
    ] = True,
    at: AtOption = None,
    config: ConfigOption = None,
) -> None:
    """Upsert the dashboards into a running Grafana (token: SIAGA_GRAFANA__TOKEN), then a
    folder per regency with its dashboards, its team and its permissions."""
    import json

    from dashboards.grafana.build import dashboard_json
    from dashboards.grafana.build import regencies as regency_boards
    from dashboards.grafana.push import FolderPlan, PushError, push_dashboards, push_regencies

    try:
        settings = _load(config)
        tree = _tree(config, at)
        registry = _registry(settings)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    grafana = settings.grafana
    if grafana.token is None:
        raise _fail("no Grafana token: set SIAGA_GRAFANA__TOKEN (a service account token)")
    boards = [
        json.loads(content) for path, content in sorted(tree.items()) if path.startswith("json/")
    ]
    target = (url or grafana.url).rstrip("/")
    try:
        result = push_dashboards(
            target,
            grafana.token.get_secret_value(),
            boards,
            folder_uid=grafana.folder_uid,
            folder_title=grafana.folder_title,
            timeout_s=grafana.timeout_s,
        )
    except PushError as exc:
        raise _fail(str(exc)) from None
    verb = "created" if result.folder_created else "found"
    typer.echo(f"folder {grafana.folder_uid}: {verb}")
    for uid, path in result.dashboards:
        typer.echo(f"{uid}: {target}{path}")
    if not regencies:
        return
    plans = [
        FolderPlan(f.uid, f.title, f.team, [dashboard_json(b) for b in f.dashboards])
        for f in regency_boards(registry.stations(), registry.provinces(), grafana, _at_ns(at))
    ]
    try:
        folders = push_regencies(
            target, grafana.token.get_secret_value(), plans, timeout_s=grafana.timeout_s
        )
    except PushError as exc:
        raise _fail(str(exc)) from None
    for plan, pushed in zip(plans, folders, strict=True):
        verb = "created" if pushed.folder_created else "found"
        typer.echo(f"folder {pushed.uid} ({plan.title}): {verb}, viewed by team {plan.team!r}")
        for uid, path in pushed.dashboards:
            typer.echo(f"  {uid}: {target}{path}")
