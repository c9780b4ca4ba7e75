"""What a person sees while a simulation runs: a progress bar and a live summary (rich)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulators.faults import Outgoing
from simulators.fleet import FleetReport
from simulators.runner import RunReport
from simulators.scenario import ExpectationResult

NS_PER_S = 1_000_000_000


@dataclass
class _StationRow:
    sent: int = 0
    level_cm: float | None = None
    faults: int = 0


@dataclass
class LiveDisplay:
    """A progress bar over the messages and a table per station, refreshed a few times a second.

    Use it as a context manager around a run and pass it as the run's ``display``; it appears
    when publishing begins.

    Args:
        title: What is running.
        console: Where to draw (default: the terminal).
    """

    title: str
    console: Console | None = None
    progress_every_s: float = 10.0
    formats: dict[str, str] = field(default_factory=dict)
    _rows: dict[str, _StationRow] = field(default_factory=dict)
    _faults: dict[str, int] = field(default_factory=dict)
    _sim_ns: int = 0
    _live: Live | None = None
    _plain: bool = False
    _last_line_s: float = 0.0

    def __post_init__(self) -> None:
        # Off a terminal (a log file, systemd, CI) a live display draws nothing at all, so a
        # plain progress line is printed every ``progress_every_s`` instead.
        self._plain = not (self.console or Console()).is_terminal
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("sim {task.fields[sim]}"),
            console=self.console,
        )
        self._task = self._progress.add_task(self.title, total=None, sim="-")

    def __enter__(self) -> LiveDisplay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, error, trace)
            self._live.console.line()

    def begin(self, total: int, formats: Mapping[str, str]) -> None:
        """Set the number of messages and list the stations (called by the runner)."""
        self.formats = dict(formats)
        for station in formats:
            self._rows.setdefault(station, _StationRow())
        self._progress.update(self._task, total=total)
        if self._plain:
            self._say(f"{self.title}: publishing {total} messages for {len(formats)} stations")
            self._last_line_s = time.monotonic()
            return
        if self._live is None:
            # Drawn from here on only: a run that fails before publishing shows just its error.
            self._live = Live(
                get_renderable=self._render, console=self.console, refresh_per_second=4
            )
            self._live.__enter__()

    def update(self, sent: int, total: int, sim_ns: int, message: Outgoing) -> None:
        """Record one published message (called by the runner)."""
        self._sim_ns = sim_ns
        row = self._rows.setdefault(message.station, _StationRow())
        row.sent += 1
        if message.level_cm is not None:
            row.level_cm = message.level_cm
        if message.fault is not None:
            row.faults += 1
            kind = message.fault.split(":", 1)[0]
            self._faults[kind] = self._faults.get(kind, 0) + 1
        self._progress.update(self._task, completed=sent, total=total, sim=_clock(sim_ns))
        if self._plain and (
            sent == total or time.monotonic() - self._last_line_s >= self.progress_every_s
        ):
            self._last_line_s = time.monotonic()
            self._say(self.progress_line(sent, total))

    def progress_line(self, sent: int, total: int) -> str:
        """One line: messages sent, simulated time, and the latest level of each station."""
        share = 100 * sent / total if total else 100.0
        levels = ", ".join(
            f"{station} {row.level_cm:.0f} cm"
            for station, row in sorted(self._rows.items())
            if row.level_cm is not None
        )
        return (
            f"{self.title}: {sent}/{total} messages ({share:.0f}%), simulated "
            f"{_clock(self._sim_ns)}" + (f"; {levels}" if levels else "")
        )

    def _say(self, line: str) -> None:
        (self.console or Console()).print(line, highlight=False, soft_wrap=True)

    def _render(self) -> RenderableType:
        table = Table("station", "format", "sent", "level cm", "faults", expand=False)
        for station, row in sorted(self._rows.items()):
            level = "" if row.level_cm is None else f"{row.level_cm:.1f}"
            table.add_row(
                station, self.formats.get(station, ""), str(row.sent), level, str(row.faults or "")
            )
        injected = ", ".join(f"{k} {v}" for k, v in sorted(self._faults.items())) or "none yet"
        return Group(self._progress, table, f"faults injected: {injected}")


def _clock(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS_PER_S, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def render_report(report: RunReport, promises: Sequence[ExpectationResult] = ()) -> RenderableType:
    """A run's report: valid readings per station, expected rejections, faults, refusals, and
    whether the readings sent kept the scenario's promised crossings."""
    header = (
        f"[bold]{report.name}[/]: {report.messages_sent} messages in {report.wall_s:.1f} s "
        f"(speed {report.speed:g}, simulated from {_clock(report.start_ns)})"
        + (" [red]interrupted[/]" if report.interrupted else "")
    )
    readings = Table("station", "valid readings", title="sent")
    for station, count in sorted(report.valid_counts().items()):
        readings.add_row(station, str(count))
    readings.add_row("[bold]total", f"[bold]{report.valid_total}")
    rejections = Table("reason", "expected rejections", title="rejections")
    for reason, count in sorted(report.rejections.items()):
        rejections.add_row(reason, str(count))
    faults = Table("fault", "station", "readings", "outcome", title="faults")
    for record in report.faults:
        outcome = record.outcome + (f" ({record.reason})" if record.reason else "")
        faults.add_row(record.kind, record.station, str(record.readings), outcome)
    parts: list[RenderableType] = [header, readings, rejections, faults]
    skipped = {why: count for why, count in report.skipped_rows.items() if count}
    if skipped:
        parts.append(
            "rows of the file not sent: "
            + ", ".join(f"{count} {why}" for why, count in sorted(skipped.items()))
        )
    if promises:
        kept = Table("station", "promise", "in the readings sent", title="promised crossings")
        for result in promises:
            mark = "[green]kept[/]" if result.held else "[red]NOT KEPT[/]"
            kept.add_row(result.station, result.promise, f"{mark}: {result.observed}")
        parts.append(kept)
    if report.refused:
        refused = Table("topic", "broker's reason", title="refused by the broker")
        for topic, reason in report.refused:
            refused.add_row(topic, reason)
        parts.append(refused)
    return Group(*parts)


def render_fleet_report(report: FleetReport) -> RenderableType:
    """A fleet run's counts and rates."""
    table = Table("", "value", title="fleet")
    for name, value in (
        ("stations", f"{report.stations:,}"),
        ("interval", f"{report.interval_s:g} s"),
        ("processes", str(report.processes)),
        ("published", f"{report.sent:,}"),
        ("acknowledged", f"{report.acked:,}"),
        ("refused", f"{report.refused:,}"),
        ("target rate", f"{report.target_rate_per_s:,.0f} msg/s"),
        ("achieved rate", f"{report.publish_rate_per_s:,.0f} msg/s"),
        ("worst lag behind schedule", f"{report.max_lag_s:.2f} s"),
        ("lag at the end", f"{report.final_lag_s:.2f} s"),
        ("due but unsent at the end", f"{report.unsent:,}"),
        ("reading times", report.timestamps),
        ("in flight per process", f"{report.window:,}"),
        ("wall time", f"{report.elapsed_s:.1f} s"),
    ):
        table.add_row(name, value)
    return table
