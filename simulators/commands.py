"""What ``siaga simulate`` does once its arguments are parsed: load, run, show the report.

Kept apart from :mod:`simulators.cli` so that mounting the command costs ``siaga`` nothing at
start-up: the models, numpy and paho are imported only when a simulation runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from rich.console import Console

from devices.errors import SiagaError
from devices.registry import RegistryFileError, load_registry
from devices.stations import StationFileError
from simulators.display import LiveDisplay, render_fleet_report, render_report
from simulators.encoding import EncodingError
from simulators.fleet import run_fleet, write_fleet_stations
from simulators.promises import check_sent
from simulators.replay import ReplayError, run_replay
from simulators.runner import RunError, load_credentials, parse_start, run_scenario
from simulators.scenario import ScenarioError, load_scenario, parse_duration_s

EXPECTED_ERRORS = (
    RunError,
    ScenarioError,
    ReplayError,
    EncodingError,
    RegistryFileError,
    StationFileError,
)


class CommandError(SiagaError):
    """A problem to show the user in one sentence (exit status 2)."""


def _duration_s(option: str, text: str) -> float:
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise CommandError(f"{option}: {exc}") from None


def simulate_scenario(
    *,
    scenario: str,
    speed: float,
    start: str | None,
    broker: str,
    credentials: Path | None,
    seed: int | None,
    topic_prefix: str,
    stations_file: Path,
    devices_file: Path,
    console: Console | None = None,
) -> None:
    """Run a scenario with a live display, then print its report.

    Raises:
        CommandError: Anything the user can fix (files, broker, start time).
    """
    console = console or Console()
    try:
        chosen = load_scenario(scenario)
        registry = load_registry(stations_file, devices_file)
        passwords = load_credentials(credentials) if credentials else None
        with LiveDisplay(chosen.name, console=console) as display, _sigterm_interrupts():
            report = run_scenario(
                chosen,
                broker_url=broker,
                speed=speed,
                start_ns=parse_start(start) if start else None,
                seed=seed,
                credentials=passwords,
                registry=registry,
                topic_prefix=topic_prefix,
                display=display,
            )
    except EXPECTED_ERRORS as exc:
        raise CommandError(str(exc)) from None
    console.print(render_report(report, check_sent(chosen, registry, report)))


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM stops a run the way Ctrl-C does: the summary is still printed.

    A supervisor (``siaga up``, systemd) stops a simulation with SIGTERM, whose default action
    would end the process before it reports what it sent.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def simulate_fleet(
    *,
    stations: int,
    interval: str,
    duration: str,
    processes: int,
    write_stations: Path | None,
    broker: str,
    topic_prefix: str,
    console: Console | None = None,
    timestamps: str = "scheduled",
    window: int = 2000,
) -> None:
    """Write the fleet's stations file, or run the fleet and print its rates.

    Raises:
        CommandError: Bad durations, broker problems.
    """
    console = console or Console()
    interval_s = _duration_s("--interval", interval)
    duration_s = _duration_s("--duration", duration)
    if timestamps not in {"scheduled", "actual"}:
        raise CommandError("--timestamps: scheduled or actual")
    if write_stations is not None:
        write_fleet_stations(write_stations, stations, interval_s=interval_s)
        console.print(f"wrote {stations} fleet stations to {write_stations}")
        return
    try:
        report = run_fleet(
            stations,
            interval_s,
            duration_s,
            processes,
            broker_url=broker,
            topic_prefix=topic_prefix,
            timestamps="actual" if timestamps == "actual" else "scheduled",
            window=window,
        )
    except EXPECTED_ERRORS as exc:
        raise CommandError(str(exc)) from None
    console.print(render_fleet_report(report))


def simulate_replay(
    *,
    file: Path,
    speed: float,
    shift_to_now: bool,
    broker: str,
    credentials: Path | None,
    topic_prefix: str,
    stations_file: Path,
    devices_file: Path,
    console: Console | None = None,
) -> None:
    """Replay a CSV with a live display, then print its report.

    Raises:
        CommandError: Bad file (naming the line), unknown stations, broker problems.
    """
    console = console or Console()
    try:
        registry = load_registry(stations_file, devices_file)
        passwords = load_credentials(credentials) if credentials else None
        with LiveDisplay(file.name, console=console) as display, _sigterm_interrupts():
            report = run_replay(
                file,
                broker_url=broker,
                speed=speed,
                shift_to_now=shift_to_now,
                credentials=passwords,
                registry=registry,
                topic_prefix=topic_prefix,
                display=display,
            )
    except EXPECTED_ERRORS as exc:
        raise CommandError(str(exc)) from None
    console.print(render_report(report))
