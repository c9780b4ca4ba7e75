"""The rules file (``config/rules.yaml``): defaults for every station, overrides per place.

A registry alone already alerts: the defaults here plus each station's thresholds, interval and
downstream links. The file overrides them per regency, river or station (in that order of
precedence, the most specific last). It is validated whole at start-up and on every reload; a
broken edit keeps the last good configuration (see :func:`reload_rules`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from devices.levels import Level
from devices.stations import Station, load_yaml
from ingest.errors import ConfigError

LevelName = Literal["WASPADA", "SIAGA", "AWAS"]
TIDAL_DAY_S = 89_424.0
"""A lunar day (24 h 50 min 24 s): two M2 periods of 12.42 h."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LevelRule(_Model):
    """NORMAL → WASPADA → SIAGA → AWAS by the station's thresholds, with hysteresis downwards.

    Attributes:
        recovery_band_pct: Falling below a threshold by this share of it de-escalates at once.
        recovery_band_cm: An absolute band instead of the percentage, when set.
        hold_s: Staying below a threshold (by less than the band) this long also de-escalates.
        tidal: The station is on a tidal reach: every flood tide crosses a threshold that every
            ebb falls back from, so de-escalation is judged on the tidal envelope (the highest
            level over the last ``tidal_day_s``) instead of the latest reading. Escalation
            stays immediate.
        tidal_day_s: The envelope's span: one lunar day (24 h 50 min) holds both semi-diurnal
            high waters and the diurnal inequality between them.
        tidal_max_gap_s: A tidal day with a longer silence inside may have missed a high water
            (at 1.5 h from high water the tide is already down by over a quarter of its range),
            so its envelope steps nothing down until a tidal day of readings without one.
    """

    enabled: bool = True
    recovery_band_pct: float = Field(default=5.0, ge=0, lt=100)
    recovery_band_cm: float | None = Field(default=None, ge=0)
    hold_s: float = Field(default=3600.0, gt=0)
    tidal: bool = False
    tidal_day_s: float = Field(default=TIDAL_DAY_S, ge=3600, le=7 * 86400)
    tidal_max_gap_s: float = Field(default=3 * 3600.0, ge=3600)


class RateRule(_Model):
    """A rise (or fall) larger than ``rise_cm`` (``fall_cm``) within ``window_s`` of event time.

    Attributes:
        name: Unique among a station's rate rules; the incident's rule is ``rate:<name>``.
        severity: The level this rule stands for (routing uses it).
    """

    name: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    window_s: float = Field(gt=0, le=7 * 86400)
    rise_cm: float | None = Field(default=None, gt=0)
    fall_cm: float | None = Field(default=None, gt=0)
    severity: LevelName = "WASPADA"

    @model_validator(mode="after")
    def _one_direction(self) -> RateRule:
        if (self.rise_cm is None) == (self.fall_cm is None):
            raise ValueError(f"rate rule {self.name!r}: give exactly one of rise_cm or fall_cm")
        return self

    @property
    def level(self) -> Level:
        """The severity as a canonical level."""
        return Level[self.severity]


DEFAULT_RATES = (
    RateRule(name="rise_10min", window_s=600, rise_cm=15),
    RateRule(name="rise_1h", window_s=3600, rise_cm=50),
)


class UpstreamRule(_Model):
    """Warn the stations downstream when this one escalates (or rises fast).

    Attributes:
        on_rate: A firing rise rule warns too (at the rule's severity), before any threshold.
        max_travel_s: Stations further down than this (summed travel time) are not warned.
    """

    enabled: bool = True
    on_rate: bool = True
    max_travel_s: float = Field(default=3 * 86400.0, gt=0)


class NoDataRule(_Model):
    """A station silent for ``missed_intervals`` of its reporting interval.

    Attributes:
        group_wait_s: How long an overdue station waits for the rest of its regency before it
            fires on its own; when every station of the regency is overdue, one grouped event
            fires instead of one per station.
        group_min_stations: Regencies with fewer stations in scope never group.
    """

    enabled: bool = True
    missed_intervals: float = Field(default=3.0, ge=1)
    group_wait_s: float = Field(default=900.0, ge=0)
    group_min_stations: int = Field(default=2, ge=2)


class FaultsRule(_Model):
    """Sensor faults: flatline, spike, low battery.

    Attributes:
        flatline_s: The same value for this long is a stuck sensor ...
        flatline_min_readings: ... over at least this many readings.
        spike_cm: A jump larger than this from the previous reading waits for the next one: if
            that one returns (to within half of it), the jump was a spike, flagged and kept out
            of level decisions; otherwise both readings count (at their own times).
        spike_max_gap_s: Only a jump from a reading at most this much older is suspect (after
            a long silence the water may really have moved that much).
        spike_clear_s: A spike incident resolves after this long without another spike.
        battery_low_v: Volts below which the battery is low (None: 11.8 V for 12 V systems,
            3.3 V for single cells, judged by the highest voltage seen).
        battery_low_pct: State of charge below which the battery is low.
    """

    enabled: bool = True
    # A river at low water can stay within one step of a staff gauge (5-10 cm: posts report
    # "80 cm" from 11:00 to 17:00) for hours, so "stuck" needs half a day; a tidal reach, never
    # still, is given 3 h in config/rules.yaml.
    flatline_s: float = Field(default=12 * 3600.0, gt=0)
    flatline_min_readings: int = Field(default=12, ge=2)
    spike_cm: float = Field(default=50.0, gt=0)
    spike_max_gap_s: float = Field(default=2 * 3600.0, gt=0)
    spike_clear_s: float = Field(default=6 * 3600.0, gt=0)
    battery_low_v: float | None = Field(default=None, gt=0)
    battery_low_pct: float = Field(default=15.0, ge=0, le=100)


class RuleSet(_Model):
    """Every rule's settings for one station.

    Attributes:
        pending_s: Per kind (``level``, ``rate``, …): how long a condition must hold before
            its incident moves from pending to firing (0, the default: fire at once).
    """

    level: LevelRule = LevelRule()
    rate: tuple[RateRule, ...] = DEFAULT_RATES
    upstream: UpstreamRule = UpstreamRule()
    no_data: NoDataRule = NoDataRule()
    faults: FaultsRule = FaultsRule()
    pending_s: dict[str, float] = Field(default_factory=dict)

    @field_validator("rate")
    @classmethod
    def _unique_names(cls, rules: tuple[RateRule, ...]) -> tuple[RateRule, ...]:
        names = [rule.name for rule in rules]
        if len(names) != len(set(names)):
            raise ValueError("rate rule names must be unique")
        return rules

    @field_validator("pending_s")
    @classmethod
    def _known_kinds(cls, pending: dict[str, float]) -> dict[str, float]:
        known = {"level", "rate", "upstream", "no_data", "sensor_fault", "forecast"}
        for kind, seconds in pending.items():
            if kind not in known:
                raise ValueError(f"pending_s: unknown kind {kind!r}; known: {sorted(known)}")
            if not (seconds >= 0 and math.isfinite(seconds)):
                raise ValueError(f"pending_s.{kind} must be a finite number >= 0")
        return pending


class Match(_Model):
    """Which stations an override applies to: exactly one of station, river or regency."""

    station: str | None = None
    river: str | None = None
    regency: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Match:
        if sum(value is not None for value in (self.station, self.river, self.regency)) != 1:
            raise ValueError("match exactly one of station, river or regency")
        return self

    @property
    def precedence(self) -> int:
        """Regency first, then river, then station (the most specific wins)."""
        return 0 if self.regency is not None else 1 if self.river is not None else 2

    def applies(self, station: Station) -> bool:
        """Whether ``station`` is matched."""
        if self.station is not None:
            return station.id == self.station
        if self.river is not None:
            return station.river == self.river
        return station.regency == self.regency


_SECTIONS = ("level", "rate", "upstream", "no_data", "faults", "pending_s")


class Override(_Model):
    """Settings that replace the defaults for the matched stations (sections merge by field;
    ``rate`` is replaced whole)."""

    match: Match
    level: dict[str, Any] | None = None
    rate: list[dict[str, Any]] | None = None
    upstream: dict[str, Any] | None = None
    no_data: dict[str, Any] | None = None
    faults: dict[str, Any] | None = None
    pending_s: dict[str, float] | None = None


def _merge(base: Mapping[str, Any], override: Override) -> dict[str, Any]:
    merged = dict(base)
    for section in _SECTIONS:
        value = getattr(override, section)
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(merged.get(section), Mapping):
            merged[section] = {**merged[section], **value}
        else:
            merged[section] = value
    return merged


class SilenceGroup(_Model):
    """Stations that go silent together (one gateway, one modem, one cell tower).

    Attributes:
        name: The group's subject, e.g. ``gateway:menggala-01``.
        stations: Its stations; a station listed here is grouped here, not with its regency.
    """

    name: str = Field(pattern=r"^[a-z]+:[A-Za-z0-9_. -]{1,100}$")
    stations: tuple[str, ...] = Field(min_length=1)


class RulesConfig(_Model):
    """The whole rules file.

    Attributes:
        version: The file format (1).
        defaults: Settings for every station not overridden.
        overrides: Per regency, river or station.
        groups: No-data groups other than regencies (a station's regency is its group
            unless it is listed in one of these).
    """

    version: Literal[1] = 1
    defaults: RuleSet = RuleSet()
    overrides: tuple[Override, ...] = ()
    groups: tuple[SilenceGroup, ...] = ()

    @field_validator("groups")
    @classmethod
    def _one_group_each(cls, groups: tuple[SilenceGroup, ...]) -> tuple[SilenceGroup, ...]:
        seen: dict[str, str] = {}
        names = set()
        for group in groups:
            if group.name in names or group.name.startswith("regency:"):
                raise ValueError(f"group {group.name!r} is defined twice or names a regency")
            names.add(group.name)
            for station in group.stations:
                if station in seen:
                    raise ValueError(
                        f"station {station!r} is in both {seen[station]!r} and {group.name!r}"
                    )
                seen[station] = group.name
        return groups

    def group_of(self, station: Station) -> str:
        """The no-data group of ``station``: a listed group, else ``regency:<name>``."""
        for group in self.groups:
            if station.id in group.stations:
                return group.name
        return f"regency:{station.regency}"

    @model_validator(mode="after")
    def _overrides_valid(self) -> RulesConfig:
        # Check each override against the defaults now, so that a bad file fails at start-up
        # (or on reload), not at the first reading of the station it names.
        base = self.defaults.model_dump()
        for index, override in enumerate(self.overrides):
            try:
                RuleSet.model_validate(_merge(base, override))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                raise ValueError(f"overrides[{index}]: {problems}") from None
        return self

    def for_station(self, station: Station) -> RuleSet:
        """The settings in force for ``station``: defaults, then matching overrides."""
        matching = sorted(
            (o for o in self.overrides if o.match.applies(station)),
            key=lambda o: o.match.precedence,
        )
        if not matching:
            return self.defaults
        merged: dict[str, Any] = self.defaults.model_dump()
        for override in matching:
            merged = _merge(merged, override)
        return RuleSet.model_validate(merged)


class RulesFileError(ConfigError, ValueError):
    """A rules file that cannot be used; the message names the place and the problem.

    Also a ``ValueError``: pydantic validators raise it, and ``alerts.runtime`` catches
    ``ValueError`` from the station and rules files together.
    """


def parse_rules(text: str, source: str = "<rules>") -> RulesConfig:
    """Parse and validate a rules document (an empty document means all defaults).

    Raises:
        RulesFileError: With the key at fault.
    """
    try:
        document = load_yaml(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise RulesFileError(f"{source}: not valid YAML: {exc}") from None
    if document is None:
        document = {}
    try:
        return RulesConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise RulesFileError(f"{source}: {problems}") from None


def load_rules(path: Path | None) -> RulesConfig:
    """Read a rules file; None or a missing file means the defaults alone."""
    if path is None or not path.exists():
        return RulesConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesFileError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_rules(text, str(path))


def reload_rules(path: Path | None, current: RulesConfig) -> tuple[RulesConfig, str | None]:
    """Reload after an edit: the new configuration, or the current one and why not.

    Returns:
        ``(rules, None)`` when the file is good, ``(current, problem)`` when it is not: a
        broken edit never replaces a working configuration.
    """
    try:
        return load_rules(path), None
    except RulesFileError as exc:
        return current, str(exc)
