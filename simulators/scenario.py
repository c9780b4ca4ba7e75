"""Scenario files (``config/scenarios/*.yaml``): what happens where and when, and what it promises.

A scenario names its stations (ids from the registry, optionally with model settings), the run's
duration, grid step and seed, flood events, faults, and ``expect`` entries: promises about the
noise-free levels, such as "Menggala reaches SIAGA between day 2 and day 3", that the tests
check against the model. Times are offsets from the run's start, written as durations
(``90s``, ``15min``, ``6h``, ``2d``, ``1h30min``) or plain seconds; the start itself is chosen
when the scenario runs (see :func:`simulators.runner.default_start`), so a scenario can be
rehearsed on any day.

Every problem is reported with the key at fault, e.g.
``config/scenarios/x.yaml: events[1].time_to_peak: must be shorter than recession``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from devices.errors import ConfigError
from devices.levels import LABEL_SCHEMES, Level
from devices.registry import Registry
from devices.stations import Station
from simulators.faults import MALFORMED, NATIVE_ONLY_FAULTS, Fault, FaultKind
from simulators.models import (
    LEVEL_METRIC,
    RAIN_METRIC,
    Channel,
    FloodEvent,
    Gauge,
    Hydrograph,
    RiverNetwork,
    Tide,
    Truth,
    crest,
    warning_levels,
)

SCENARIOS_DIR = Path("config/scenarios")
_UNITS_S = {"d": 86_400.0, "h": 3600.0, "min": 60.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|min|ms|m|s)")


class ScenarioError(ConfigError, ValueError):
    """A scenario that cannot be used; the message names the file and the key at fault."""


def parse_duration_s(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15min"``, ``"6h"``, ``"2d"`` or ``"1h30min"``.

    Raises:
        ValueError: For anything else, negative numbers included.
    """
    message = "a duration is a number of seconds or a string like '15min'"
    if isinstance(value, bool):
        # ValueError, not TypeError: pydantic turns only ValueError into a validation message.
        raise ValueError(message)  # noqa: TRY004
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            position, seconds = 0, 0.0
            for match in _DURATION.finditer(text):
                if text[position : match.start()].strip():
                    break
                seconds += float(match.group(1)) * _UNITS_S[match.group(2)]
                position = match.end()
            if position == 0 or text[position:].strip():
                raise ValueError(
                    f"{value!r} is not a duration (write e.g. 90s, 15min, 6h, 2d or 1h30min)"
                )
    else:
        raise ValueError(message)  # noqa: TRY004
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be a finite number of seconds, not negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration_s)]
"""Seconds, written in YAML as ``90s``, ``15min``, ``6h``, ``2d`` or a number."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TideEntry(_Model):
    """Tidal amplitudes (cm) of a tidal reach."""

    m2_cm: float = Field(default=0.0, ge=0)
    s2_cm: float = Field(default=0.0, ge=0)
    k1_cm: float = Field(default=0.0, ge=0)
    o1_cm: float = Field(default=0.0, ge=0)


class RunoffEntry(_Model):
    """Rain on the station's catchment (the mean of its registry ``rain_gauges``) raising its
    river (see :class:`simulators.models.Runoff`)."""

    gain_cm_per_mm: float = Field(gt=0, le=100)
    lag_s: Duration = Field(alias="lag", ge=0)
    reservoir_s: Duration = Field(alias="reservoir", gt=0)
    dry_fraction: float = Field(default=0.3, gt=0, le=1)
    wet_mm: float = Field(default=60.0, gt=0)


class StationEntry(_Model):
    """A station in the scenario, with optional model settings.

    Attributes:
        id: The registry's station id.
        base_cm: Normal level; defaults to 55 % of the WASPADA threshold (100 cm without one).
        seasonal_cm: Half the seasonal swing.
        drift_cm_per_day: A linear trend.
        wander_cm: A smooth random wander's amplitude.
        tide: Tidal constituents, for tidal reaches.
        report_every_s: Normal reporting interval (YAML ``report_every``); the station's
            ``interval_s`` by default.
        alert_report_every_s: Interval at WASPADA and above (``alert_report_every``).
        noise_cm: The sensor's noise; the device's default otherwise.
        runoff: Its catchment's rain raises it (rain-driven rivers).
    """

    id: str
    base_cm: float | None = None
    seasonal_cm: float = 5.0
    drift_cm_per_day: float = 0.0
    wander_cm: float = Field(default=3.0, ge=0)
    tide: TideEntry | None = None
    report_every_s: Duration | None = Field(default=None, alias="report_every", gt=0)
    alert_report_every_s: Duration | None = Field(default=None, alias="alert_report_every", gt=0)
    noise_cm: float | None = Field(default=None, ge=0)
    runoff: RunoffEntry | None = None


def _station_entry(value: object) -> object:
    return {"id": value} if isinstance(value, str) else value


class Routing(_Model):
    """Defaults for every river link."""

    attenuation: float = Field(default=0.8, gt=0, le=1.5)
    spread: float = Field(default=0.15, ge=0, le=2)


class LinkEntry(_Model):
    """Settings for one of the registry's river links."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    attenuation: float | None = Field(default=None, gt=0, le=1.5)
    spread: float | None = Field(default=None, ge=0, le=2)


class EventEntry(_Model):
    """A rain event that raises a flood wave at a station.

    Attributes:
        station: Where the water starts rising.
        at_s: Onset of the rise (YAML ``at``).
        peak_cm: Crest height above the undisturbed level, at this station (0: rain only,
            which stations with ``runoff`` turn into water).
        time_to_peak_s: Onset to crest (``time_to_peak``).
        recession_s: E-folding time of the recession (``recession``).
        rain_mm: Rain it brings to the basin's rain gauges.
        rain_lead_s: How long before the onset the rain starts (``rain_lead``).
        rain_duration_s: How long it rains (``rain_duration``).
    """

    type: Literal["rain"] = "rain"
    station: str
    at_s: Duration = Field(alias="at")
    peak_cm: float = Field(ge=0, le=2000)
    time_to_peak_s: Duration = Field(alias="time_to_peak", gt=0)
    recession_s: Duration = Field(alias="recession", gt=0)
    rain_mm: float = Field(default=60.0, ge=0, le=1000)
    rain_lead_s: Duration | None = Field(default=None, alias="rain_lead")
    rain_duration_s: Duration | None = Field(default=None, alias="rain_duration")

    @model_validator(mode="after")
    def _recession_outlasts_rise(self) -> EventEntry:
        if self.time_to_peak_s >= self.recession_s:
            raise ValueError("time_to_peak must be shorter than recession")
        return self


class FaultEntry(_Model):
    """A fault to inject (see :mod:`simulators.faults`)."""

    kind: FaultKind
    station: str
    at_s: Duration = Field(alias="at")
    duration_s: Duration = Field(default=0.0, alias="duration")
    count: int = Field(default=1, ge=1, le=10_000)
    magnitude: float = Field(default=0.0, ge=0)
    payload: str | None = None
    target: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> FaultEntry:
        if self.kind == "malformed":
            if self.payload is None:
                raise ValueError(f"malformed faults need payload: one of {', '.join(MALFORMED)}")
            if self.payload not in MALFORMED:
                raise ValueError(
                    f"payload {self.payload!r} is not a malformed kind; known: "
                    f"{', '.join(MALFORMED)}"
                )
        elif self.payload is not None:
            raise ValueError("payload is only for malformed faults")
        if (self.kind == "spoof") != (self.target is not None):
            raise ValueError("spoof faults (and only they) need a target station")
        if self.kind in {"noise", "flatline", "dropout", "backlog", "duplicate"} and (
            self.duration_s <= 0
        ):
            raise ValueError(f"{self.kind} faults need a duration")
        return self


LevelName = str


class ExpectEntry(_Model):
    """A promise about the noise-free levels, checked by the tests.

    Exactly one of:

    * ``reaches: SIAGA, within: [2d, 3d]``: the level first reaches SIAGA inside the window;
    * ``stays_below: WASPADA``: never reaches WASPADA (within the window, if one is given);
    * ``peak_within: [4h, 5h]``: the crest falls inside the window;
    * ``rate_cm_per_day: [3, 8], within: [5d, 6d]``: the mean rate of rise over the window;
    * ``rise_cm: 100, over: 1h``: somewhere the level rises at least this much within ``over``.

    Levels are canonical names (NORMAL, WASPADA, SIAGA, AWAS) or the station's regional labels
    (e.g. ``Siaga 1`` on Jakarta's gates). ``station: "*"`` means every level station of the
    scenario that has thresholds.
    """

    station: str
    reaches: LevelName | None = None
    stays_below: LevelName | None = None
    within_s: tuple[Duration, Duration] | None = Field(default=None, alias="within")
    peak_within_s: tuple[Duration, Duration] | None = Field(default=None, alias="peak_within")
    rate_cm_per_day: tuple[float, float] | None = None
    rise_cm: float | None = Field(default=None, gt=0)
    over_s: Duration | None = Field(default=None, alias="over", gt=0)

    @model_validator(mode="after")
    def _one_promise(self) -> ExpectEntry:
        kinds = [
            name
            for name, value in (
                ("reaches", self.reaches),
                ("stays_below", self.stays_below),
                ("peak_within", self.peak_within_s),
                ("rate_cm_per_day", self.rate_cm_per_day),
                ("rise_cm", self.rise_cm),
            )
            if value is not None
        ]
        if len(kinds) != 1:
            raise ValueError(
                "give exactly one of reaches, stays_below, peak_within, rate_cm_per_day, "
                f"rise_cm (got {', '.join(kinds) or 'none'})"
            )
        if kinds[0] in {"reaches", "rate_cm_per_day"} and self.within_s is None:
            raise ValueError(f"{kinds[0]} needs within: [from, to]")
        if (kinds[0] == "rise_cm") != (self.over_s is not None):
            raise ValueError("rise_cm needs over (and over is only for rise_cm)")
        for window in (self.within_s, self.peak_within_s, self.rate_cm_per_day):
            if window is not None and window[0] > window[1]:
                raise ValueError("a window's start must not be after its end")
        return self

    @property
    def kind(self) -> str:
        """Which promise this is."""
        for name, value in (
            ("reaches", self.reaches),
            ("stays_below", self.stays_below),
            ("peak_within", self.peak_within_s),
            ("rate_cm_per_day", self.rate_cm_per_day),
        ):
            if value is not None:
                return name
        return "rise_cm"


class RegistryFiles(_Model):
    """Where the registry comes from, relative to the working directory."""

    stations: Path = Path("config/stations.yaml")
    devices: Path = Path("config/devices.yaml")


class Scenario(_Model):
    """A scenario file.

    Attributes:
        name: Its name (the file's stem by default).
        description: What it rehearses.
        start: A fixed start; usually left out so the run chooses one (see the runner).
        model_start: The moment whose tides and season the levels follow, so that a run on
            any date replays the same levels (the tide follows the moon: a run's crossings
            would otherwise move by hours from one day to the next). Left out, they follow
            the run's own dates.
        duration_s: How long it lasts (YAML ``duration``).
        step_s: The model's grid step (``step``); report intervals are rounded to it.
        seed: Makes every number reproducible.
        registry: The registry files.
        routing: Defaults for river links.
        alert_report_every_s: Reporting interval at WASPADA and above, for all stations.
        stations: The stations that take part.
        links: Per-link routing settings.
        events: Flood events.
        faults: Faults to inject.
        expect: Promises about the levels.
    """

    name: str = ""
    description: str = ""
    start: datetime | None = None
    model_start: datetime | None = None
    duration_s: Duration = Field(alias="duration", gt=0, le=366 * 86_400)
    step_s: Duration = Field(default=300.0, alias="step", gt=0)
    seed: int = Field(default=1, ge=0, lt=2**63)
    registry: RegistryFiles = RegistryFiles()
    routing: Routing = Routing()
    alert_report_every_s: Duration = Field(default=900.0, alias="alert_report_every", gt=0)
    stations: list[Annotated[StationEntry, BeforeValidator(_station_entry)]] = Field(min_length=1)
    links: list[LinkEntry] = Field(default_factory=list)
    events: list[EventEntry] = Field(default_factory=list)
    faults: list[FaultEntry] = Field(default_factory=list)
    expect: list[ExpectEntry] = Field(default_factory=list)

    @field_validator("start", "model_start")
    @classmethod
    def _aware(cls, moment: datetime | None) -> datetime | None:
        if moment is not None and moment.utcoffset() is None:
            raise ValueError("start needs a UTC offset, e.g. 2026-03-01T00:00:00+07:00")
        return moment

    @model_validator(mode="after")
    def _fits(self) -> Scenario:
        if self.duration_s / self.step_s > 200_000:
            raise ValueError("duration / step exceeds 200,000 grid points; use a larger step")
        ids = [s.id for s in self.stations]
        if len(set(ids)) != len(ids):
            raise ValueError("a station is listed twice")
        return self

    def station(self, station_id: str) -> StationEntry:
        """The entry of a station of this scenario."""
        return next(s for s in self.stations if s.id == station_id)

    @property
    def station_ids(self) -> list[str]:
        """The scenario's stations, in file order."""
        return [s.id for s in self.stations]

    def fault_specs(self) -> list[Fault]:
        """The faults as :class:`simulators.faults.Fault` values."""
        return [
            Fault(
                f.kind, f.station, f.at_s, f.duration_s, f.count, f.magnitude, f.payload, f.target
            )
            for f in self.faults
        ]


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(_loc(part) for part in e['loc']) or '(top)'}: {e['msg']}"
        for e in error.errors()
    ).replace(".[", "[")


def _loc(part: object) -> str:
    return f"[{part}]" if isinstance(part, int) else str(part)


def parse_scenario(text: str, source: str = "<scenario>", name: str = "") -> Scenario:
    """Parse and validate a scenario document (without the registry checks).

    Raises:
        ScenarioError: Naming the source and the key at fault.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ScenarioError(f"{source}: expected a mapping of scenario keys")
    if name and not document.get("name"):
        document["name"] = name
    try:
        return Scenario.model_validate(document)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_problems(exc)}") from None


def scenario_path(name_or_path: str, directory: Path = SCENARIOS_DIR) -> Path:
    """A scenario's file: the path itself if it exists, else ``directory/<name>.yaml``."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        return candidate
    return directory / f"{name_or_path}.yaml"


def load_scenario(name_or_path: str, directory: Path = SCENARIOS_DIR) -> Scenario:
    """Read a scenario by name (``config/scenarios/<name>.yaml``) or path.

    Raises:
        ScenarioError: The file is missing or invalid; lists the scenarios there are.
    """
    path = scenario_path(name_or_path, directory)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        known = sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []
        hint = f"; known scenarios: {', '.join(known)}" if known else ""
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}{hint}") from None
    return parse_scenario(text, str(path), path.stem)


# -- checks against the registry ---------------------------------------------------------------


def level_stations(scenario: Scenario, registry: Registry) -> list[str]:
    """The scenario's stations that report a water level."""
    return [s for s in scenario.station_ids if LEVEL_METRIC in _station(registry, s).metrics]


def rain_stations(scenario: Scenario, registry: Registry) -> list[str]:
    """The scenario's stations that report rain."""
    return [s for s in scenario.station_ids if RAIN_METRIC in _station(registry, s).metrics]


def _station(registry: Registry, station_id: str) -> Station:
    station = registry.get(station_id)
    if station is None:
        raise ScenarioError(f"station {station_id!r} is not in the registry")
    return station


def resolve_level(name: str, station: Station) -> Level:
    """A level written as a canonical name or as the station's regional label.

    Raises:
        ValueError: For a name that is neither.
    """
    wanted = name.strip().casefold()
    schemes = [t.scheme for t in station.thresholds] or ["bnpb"]
    for scheme in schemes:
        for level, text in LABEL_SCHEMES[scheme].items():
            if text.casefold() == wanted:
                return level
    for level in Level:
        if level.name.casefold() == wanted:
            return level
    labels = sorted({text for s in schemes for text in LABEL_SCHEMES[s].values()})
    raise ValueError(
        f"{name!r} is not a level; use NORMAL, WASPADA, SIAGA, AWAS or {', '.join(labels)}"
    )


def _format_of(registry: Registry, station_id: str) -> str:
    resolved = registry.for_station_topic(station_id)
    if resolved is not None and resolved.device is not None:
        return resolved.device.format
    lorawan = [d for d in registry.devices.values() if d.station == station_id]
    return lorawan[0].format if lorawan else "native"


def check_scenario(scenario: Scenario, registry: Registry, source: str = "<scenario>") -> None:
    """Check a scenario against the registry: stations, links, events, faults, expectations.

    Raises:
        ScenarioError: Naming the key at fault.
    """
    ids = scenario.station_ids
    for index, entry in enumerate(scenario.stations):
        station = registry.get(entry.id)
        if station is None:
            raise ScenarioError(f"{source}: stations[{index}]: unknown station {entry.id!r}")
        if not {LEVEL_METRIC, RAIN_METRIC} & set(station.metrics):
            raise ScenarioError(
                f"{source}: stations[{index}]: {entry.id!r} reports neither {LEVEL_METRIC} "
                f"nor {RAIN_METRIC}"
            )
    levels = set(level_stations(scenario, registry))

    def fail(key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{source}: {key}: {message}")

    for index, link in enumerate(scenario.links):
        source_station = registry.get(link.source)
        if source_station is None or link.target not in {
            d.station for d in source_station.downstream
        }:
            raise fail(
                f"links[{index}]", f"the registry has no river link {link.source} -> {link.target}"
            )
    for index, event in enumerate(scenario.events):
        if event.station not in levels:
            raise fail(
                f"events[{index}].station",
                f"{event.station!r} is not a water-level station of this scenario",
            )
        if event.at_s >= scenario.duration_s:
            raise fail(f"events[{index}].at", "the event starts after the scenario ends")
    for index, fault in enumerate(scenario.faults):
        if fault.station not in ids:
            raise fail(
                f"faults[{index}].station", f"{fault.station!r} is not a station of this scenario"
            )
        if fault.at_s + fault.duration_s > scenario.duration_s:
            raise fail(f"faults[{index}].at", "the fault does not end before the scenario does")
        if fault.kind in NATIVE_ONLY_FAULTS:
            for key, station_id in (("station", fault.station), ("target", fault.target)):
                if station_id is None:
                    continue
                if station_id not in ids:
                    raise fail(
                        f"faults[{index}].{key}",
                        f"{station_id!r} is not a station of this scenario",
                    )
                payload_format = _format_of(registry, station_id)
                if payload_format != "native":
                    raise fail(
                        f"faults[{index}].{key}",
                        f"{fault.kind} faults send native JSON; {station_id!r} speaks "
                        f"{payload_format}",
                    )
        if fault.kind == "spoof" and fault.target == fault.station:
            raise fail(f"faults[{index}].target", "a spoof targets another station's topic")
    for index, expect in enumerate(scenario.expect):
        if expect.station != "*" and expect.station not in levels:
            raise fail(
                f"expect[{index}].station",
                f"{expect.station!r} is not a water-level station of this scenario",
            )
        for key, name in (("reaches", expect.reaches), ("stays_below", expect.stays_below)):
            if name is None:
                continue
            targets = [expect.station] if expect.station != "*" else sorted(levels)
            for station_id in targets:
                station = _station(registry, station_id)
                if not station.thresholds:
                    raise fail(f"expect[{index}].station", f"{station_id!r} has no thresholds")
                try:
                    resolve_level(name, station)
                except ValueError as exc:
                    raise fail(f"expect[{index}].{key}", str(exc)) from None


# -- from scenario to models -------------------------------------------------------------------


def default_base_cm(station: Station) -> float:
    """A normal level for a station: 55 % of its WASPADA threshold, or 100 cm."""
    if station.thresholds:
        return round(0.55 * station.thresholds[-1].waspada_cm, 1)
    return 100.0


def river_network(scenario: Scenario, registry: Registry) -> RiverNetwork:
    """The scenario's gauges, the registry's links between them and the flood events."""
    gauges: dict[str, Gauge] = {}
    for station_id in level_stations(scenario, registry):
        entry = scenario.station(station_id)
        station = _station(registry, station_id)
        tide = None
        if entry.tide is not None:
            tide = Tide(entry.tide.m2_cm, entry.tide.s2_cm, entry.tide.k1_cm, entry.tide.o1_cm)
        gauges[station_id] = Gauge(
            station_id,
            entry.base_cm if entry.base_cm is not None else default_base_cm(station),
            entry.seasonal_cm,
            entry.drift_cm_per_day,
            entry.wander_cm,
            tide,
        )
    overrides = {(link.source, link.target): link for link in scenario.links}
    channels: list[Channel] = []
    for station_id in gauges:
        for link in _station(registry, station_id).downstream:
            if link.station not in gauges:
                continue
            override = overrides.get((station_id, link.station))
            attenuation = scenario.routing.attenuation
            spread = scenario.routing.spread
            if override is not None:
                attenuation = override.attenuation or attenuation
                spread = spread if override.spread is None else override.spread
            channels.append(
                Channel(station_id, link.station, link.travel_min * 60, attenuation, spread)
            )
    return RiverNetwork(gauges, channels, flood_events(scenario))


def flood_events(scenario: Scenario) -> list[FloodEvent]:
    """The scenario's events as model events (rain lead and duration defaulted)."""
    events = []
    for entry in scenario.events:
        lead = entry.rain_lead_s
        if lead is None:
            lead = min(entry.time_to_peak_s / 2, 12 * 3600.0)
        duration = entry.rain_duration_s
        if duration is None:
            duration = max(entry.time_to_peak_s, 3600.0)
        events.append(
            FloodEvent(
                entry.station,
                entry.at_s,
                Hydrograph(entry.peak_cm, entry.time_to_peak_s, entry.recession_s),
                entry.rain_mm,
                lead,
                duration,
            )
        )
    return events


# -- expectations --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExpectationResult:
    """Whether one promise held.

    Attributes:
        station: The station judged.
        promise: The promise, in words.
        held: Whether it held.
        observed: What the model did, in words.
    """

    station: str
    promise: str
    held: bool
    observed: str


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def first_reached_s(truth: Truth, station: Station, level: Level) -> float | None:
    """When a station's noise-free level first reaches ``level`` (seconds after the start)."""
    levels = warning_levels(truth.levels_cm[station.id], station.thresholds, truth.grid)
    hits = np.flatnonzero(levels >= int(level))
    return None if not len(hits) else float(hits[0] * truth.grid.step_s)


def check_expectations(
    scenario: Scenario, registry: Registry, truth: Truth
) -> list[ExpectationResult]:
    """Judge every ``expect`` entry against the noise-free levels.

    Levels are judged with each station's thresholds valid at each moment of the run.
    """
    results: list[ExpectationResult] = []
    for expect in scenario.expect:
        targets = (
            [expect.station]
            if expect.station != "*"
            else [s for s in truth.levels_cm if _station(registry, s).thresholds]
        )
        for station_id in targets:
            station = _station(registry, station_id)
            series = truth.levels_cm[station_id]
            results.append(_judge(expect, station, series, truth))
    return results


def _judge(
    expect: ExpectEntry,
    station: Station,
    series: np.ndarray[Any, np.dtype[np.float64]],
    truth: Truth,
) -> ExpectationResult:
    sid = station.id
    times = truth.grid.offsets_s
    step = truth.grid.step_s
    if expect.reaches is not None and expect.within_s is not None:
        level = resolve_level(expect.reaches, station)
        start, end = expect.within_s
        when = first_reached_s(truth, station, level)
        promise = f"reaches {level.name} between {_hours(start)} and {_hours(end)}"
        held = when is not None and start <= when <= end
        observed = "never" if when is None else f"at {_hours(when)}"
        return ExpectationResult(sid, promise, held, observed)
    if expect.stays_below is not None:
        level = resolve_level(expect.stays_below, station)
        start, end = expect.within_s or (0.0, float(times[-1]))
        mask = (times >= start) & (times <= end)
        levels = warning_levels(series, station.thresholds, truth.grid)[mask]
        peak = int(levels.max()) if len(levels) else -1
        observed = f"highest {Level(peak).name}" if peak >= 0 else "no thresholds"
        return ExpectationResult(sid, f"stays below {level.name}", peak < int(level), observed)
    if expect.peak_within_s is not None:
        start, end = expect.peak_within_s
        when, height = crest(series, step)
        promise = f"crest between {_hours(start)} and {_hours(end)}"
        return ExpectationResult(
            sid, promise, start <= when <= end, f"crest {height:.0f} cm at {_hours(when)}"
        )
    if expect.rate_cm_per_day is not None and expect.within_s is not None:
        low, high = expect.rate_cm_per_day
        start, end = expect.within_s
        first = truth.grid.index_at(start)
        last = truth.grid.index_at(end)
        days = max((last - first) * step / 86_400, 1e-9)
        rate = float(series[last] - series[first]) / days
        promise = f"changes {low:g}..{high:g} cm/day between {_hours(start)} and {_hours(end)}"
        return ExpectationResult(sid, promise, low <= rate <= high, f"{rate:.1f} cm/day")
    assert expect.rise_cm is not None
    assert expect.over_s is not None
    best = _max_rise(series, max(round(expect.over_s / step), 1))
    promise = f"rises {expect.rise_cm:g} cm within {_hours(expect.over_s)}"
    return ExpectationResult(sid, promise, best >= expect.rise_cm, f"at most {best:.0f} cm")


def _max_rise(series: np.ndarray[Any, np.dtype[np.float64]], lag: int) -> float:
    """The largest rise from any point to any later point at most ``lag`` steps on."""
    best = 0.0
    for shift in range(1, min(lag, len(series) - 1) + 1):
        best = max(best, float(np.max(series[shift:] - series[:-shift])))
    return best
