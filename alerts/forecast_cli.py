"""``siaga forecast``: fit stage-forecast models from history, and backtest them.

    siaga forecast fit --readings recorded.csv [--stations config/stations.yaml]
    siaga forecast fit --from 2025-01-01T00:00:00+07:00 --to 2026-01-01T00:00:00+07:00
    siaga forecast backtest --readings FILE.csv --stations FILE.yaml --train-until RFC3339 \\
        [--horizon-h 12] [--forecasts-out FILE.csv] --json

Argument parsing only: the work is in :mod:`alerts.forecasting` and :mod:`forecast`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alerts.cli import (
    LanguageOption,
    _fail,
    _language,
    _one_source,
    _progress_bar,
    read_readings_file,
    recorded_readings,
)
from alerts.cli_options import (
    ConfigOption,
    FromOption,
    ReadingsCsvOption,
    ToOption,
    load_alert_settings,
)

if TYPE_CHECKING:
    from alerts.notify.message import Language
    from devices.stations import StationRegistry
    from forecast.models import FittedModel

forecast_app = typer.Typer(
    help="Stage forecasts: fit models from stored history, and backtest them with their skill.",
    no_args_is_help=True,
)


@contextmanager
def _fit_progress() -> Iterator[Callable[[int, int], None]]:
    """A bar on stderr while stations are fitted (a line per tenth when not at a terminal)."""
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress  # noqa: PLC0415

    if not sys.stderr.isatty():
        shown = [0]

        def line(done: int, total: int) -> None:
            tenth = done * 10 // max(total, 1)
            if tenth > shown[0] or done == total:
                shown[0] = tenth
                typer.echo(f"fitting: {done}/{total} stations", err=True)

        yield line
        return
    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task("fitting models", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@forecast_app.command("fit")
def fit(  # noqa: PLR0917 - typer passes every option
    readings: ReadingsCsvOption = None,
    start: FromOption = None,
    end: ToOption = None,
    stations: Annotated[
        Path | None, typer.Option(help="Registry file (default: stations.file).")
    ] = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="Where models are saved (default: forecast.models_dir).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Fit every water-level station's model on stored history and save it as a new version."""

    from alerts.backtest import BacktestError  # noqa: PLC0415
    from alerts.forecasting import fit_models, model_spec  # noqa: PLC0415
    from devices.stations import StationFileError, load_stations  # noqa: PLC0415
    from devices.timestamps import TimestampError  # noqa: PLC0415
    from forecast import store  # noqa: PLC0415
    from ingest.errors import ConfigError  # noqa: PLC0415

    _one_source(readings, start, end)
    try:
        settings = load_alert_settings(config)
        registry = load_stations(stations or settings.stations.file)
        recorded, _ = recorded_readings(settings, registry, readings, start, end)
    except (BacktestError, ConfigError, StationFileError, TimestampError) as exc:
        raise _fail(str(exc)) from None
    if not recorded:
        raise _fail("no readings to fit on")
    with _fit_progress() as progress:
        models = fit_models(
            recorded,
            registry,
            model_spec(settings.forecast),
            fitted_at_ns=time.time_ns(),
            progress=progress,
        )
    saved = store.save(models_dir or settings.forecast.models_dir, models.values())
    _print_models(saved)


def _print_models(models: list[FittedModel]) -> None:
    from rich.table import Table  # noqa: PLC0415

    from alerts.cli import _console  # noqa: PLC0415

    table = Table("station", "version", "method", "skill 3 h", "skill 6 h", "80 % covers", "note")
    for model in models:
        by_lead = {s.lead_h: s for s in model.skill}
        cells = [f"{by_lead[lead].skill:.2f}" if lead in by_lead else "-" for lead in (3, 6)]
        cover = [s.coverage for s in model.skill]
        table.add_row(
            model.station,
            f"v{model.version}",
            model.method,
            *cells,
            f"{sum(cover) / len(cover):.0%}" if cover else "-",
            model.reason,
        )
    _console().print(table)


@forecast_app.command("backtest")
def backtest(  # noqa: PLR0917 - typer passes every option
    readings: Annotated[
        Path, typer.Option(help="CSV with header station,ts,metric,value (any order).")
    ],
    stations: Annotated[Path, typer.Option(help="Registry file (config/stations.yaml format).")],
    train_until: Annotated[
        str, typer.Option(help="Fit on the readings before this RFC 3339 time; replay after.")
    ],
    horizon_h: Annotated[int, typer.Option(help="Forecast leads 1..horizon hours.")] = 12,
    forecasts_out: Annotated[
        Path | None,
        typer.Option(help="Write every forecast issued: station,issued_at,lead_h,value,low,high."),
    ] = None,
    rules: Annotated[
        Path | None, typer.Option(help="Rules file (default: alerts.rules_file).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per event, then per skill.")
    ] = False,
    language: LanguageOption = "id",
    config: ConfigOption = None,
) -> None:
    """Fit models before --train-until, replay the rest through the engine with forecasts on."""
    import orjson  # noqa: PLC0415

    from alerts.backtest import BacktestError, event_record  # noqa: PLC0415
    from alerts.forecasting import (  # noqa: PLC0415
        backtest as run_backtest,
    )
    from alerts.forecasting import forecast_rows, model_spec, warning_rule  # noqa: PLC0415
    from alerts.rules.config import RulesFileError, load_rules  # noqa: PLC0415
    from devices.stations import StationFileError, load_stations  # noqa: PLC0415
    from devices.timestamps import TimestampError, parse_timestamp_ns  # noqa: PLC0415
    from ingest.errors import ConfigError  # noqa: PLC0415

    if horizon_h < 1:
        raise _fail("--horizon-h must be 1 or more")
    chosen = _language(language)
    try:
        settings = load_alert_settings(config)
        registry = load_stations(stations)
        rules_config = load_rules(rules or settings.alerts.rules_file)
        cut_ns = parse_timestamp_ns(train_until)
        recorded = read_readings_file(readings).readings
    except (BacktestError, ConfigError, RulesFileError, StationFileError, TimestampError) as exc:
        raise _fail(str(exc)) from None
    if not any(r.ts_ns < cut_ns for r in recorded):
        raise _fail(f"no reading before --train-until {train_until}: nothing to fit on")
    if not any(r.ts_ns >= cut_ns for r in recorded):
        raise _fail(f"no reading from --train-until {train_until} on: nothing to replay")
    with _progress_bar(sum(r.ts_ns >= cut_ns for r in recorded)) as progress:
        result = run_backtest(
            recorded,
            registry,
            train_until_ns=cut_ns,
            spec=model_spec(settings.forecast, horizon_h),
            rule=warning_rule(settings.forecast),
            rules=rules_config,
            late_lag_s=settings.alerts.late_lag_s,
            progress=progress,
        )
    if forecasts_out is not None:
        with forecasts_out.open("w", encoding="utf-8") as out:
            out.writelines(f"{row}\n" for row in forecast_rows(result.forecasts))
    if as_json:
        for event in result.replay.events:
            typer.echo(orjson.dumps(event_record(event)).decode())
        for score in result.scores:
            typer.echo(orjson.dumps(score.record()).decode())
        return
    _print_skill(result, registry, chosen)


def _print_skill(result: object, registry: StationRegistry, language: Language) -> None:
    from rich.table import Table  # noqa: PLC0415

    from alerts.backtest import event_record  # noqa: PLC0415
    from alerts.cli import _console  # noqa: PLC0415
    from alerts.forecasting import ForecastBacktest  # noqa: PLC0415
    from alerts.notify.message import subject_name, summarise  # noqa: PLC0415

    assert isinstance(result, ForecastBacktest)
    console = _console()
    events = Table("at", "station", "level", "expected at", "summary")
    for event in result.replay.events:
        if event.kind.value == "forecast" and event.firing:
            record = event_record(event)
            events.add_row(
                record["at"],
                subject_name(event.subject, registry),
                record["level"],
                record.get("expected_at", ""),
                summarise(event, language, registry),
            )
    console.print(events)
    table = Table(
        "station",
        "lead h",
        "n",
        "NSE",
        "NSE persistence",
        "RMSE cm",
        "RMSE pers. cm",
        "skill",
        "80 % covers",
    )
    for score in result.scores:
        table.add_row(
            score.station,
            str(score.lead_h),
            str(score.n),
            f"{score.nse:.3f}",
            f"{score.nse_persistence:.3f}",
            f"{score.rmse_cm:.1f}",
            f"{score.rmse_persistence_cm:.1f}",
            f"{score.skill:.2f}",
            f"{score.coverage:.0%}",
        )
    console.print(table)
