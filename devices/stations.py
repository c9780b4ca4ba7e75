"""Stations, the metrics they report, and the registry that answers "who is this?".

The registry is read from YAML under ``config/`` so that changes are reviewed in git. Everything
here is pure: :func:`parse_stations` takes text, :func:`load_stations` only adds reading a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from devices.errors import ConfigError
from devices.levels import Thresholds
from devices.topics import STATION_ID_PATTERN

METRIC_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class MetricSpec(BaseModel):
    """A metric a station reports, its unit and its physically valid range (inclusive)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: str = Field(min_length=1, max_length=16)
    min: float
    max: float

    @model_validator(mode="after")
    def _range_is_ordered(self) -> MetricSpec:
        if not self.min <= self.max:  # also refuses NaN, which compares false
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Link(BaseModel):
    """A river link: this station drains to ``station``, water arriving after ``travel_min``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    station: str = Field(pattern=f"^{STATION_ID_PATTERN.pattern}$")
    travel_min: float = Field(gt=0)


class Station(BaseModel):
    """A place in the field that reports readings.

    Attributes:
        mounting_height_cm: For distance (ultrasonic/radar) sensors: height of the sensor above
            the gauge zero; water level = mounting height - measured distance.
        datum_m: Gauge zero in metres above mean sea level, when surveyed.
        interval_s: How often the station reports in normal times (for completeness).
        downstream: Where its water goes next, and how long it takes.
        thresholds: Warning thresholds for ``water_level_cm``, versioned by ``valid_from``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=f"^{STATION_ID_PATTERN.pattern}$")
    name: str = Field(min_length=1, max_length=200)
    regency: str = Field(min_length=1, max_length=100)
    river: str | None = Field(default=None, max_length=100)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    metrics: dict[str, MetricSpec] = Field(min_length=1)
    district: str | None = Field(default=None, max_length=100)
    basin: str | None = Field(default=None, max_length=100)
    datum_m: float | None = None
    mounting_height_cm: float | None = Field(default=None, gt=0)
    interval_s: int = Field(default=900, gt=0)
    downstream: list[Link] = Field(default_factory=list)
    thresholds: list[Thresholds] = Field(default_factory=list)

    @field_validator("name", "regency", "river", "district", "basin")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        # These become InfluxDB tags: no control characters, and no backslash, which
        # InfluxDB 1.x cannot parse at the end of a tag value.
        if value is not None and (any(ord(c) < 32 for c in value) or "\\" in value):
            raise ValueError("must not contain control characters or backslashes")
        return value

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, metrics: dict[str, MetricSpec]) -> dict[str, MetricSpec]:
        for name in metrics:
            if not re.match(METRIC_NAME_PATTERN, name) or name in {"ts", "seq", "station"}:
                raise ValueError(
                    f"metric name {name!r} must match {METRIC_NAME_PATTERN} "
                    "and not be ts, seq or station"
                )
        return metrics


class StationRegistry(Protocol):
    """Answers which stations exist. The full device registry implements this too."""

    def get(self, station_id: str) -> Station | None:
        """The station with this id, or None when it is unknown."""
        ...

    def stations(self) -> list[Station]:
        """Every known station, in a stable order."""
        ...


class StaticRegistry:
    """A registry over a fixed set of stations."""

    def __init__(self, stations: Iterable[Station]) -> None:
        self._by_id: dict[str, Station] = {}
        for station in stations:
            if station.id in self._by_id:
                raise ValueError(f"station id {station.id!r} appears twice")
            self._by_id[station.id] = station

    def get(self, station_id: str) -> Station | None:
        """The station with this id, or None when it is unknown."""
        return self._by_id.get(station_id)

    def stations(self) -> list[Station]:
        """Every station, in file order."""
        return list(self._by_id.values())


class StationFileError(ConfigError, ValueError):
    """A station file that cannot be used; the message names the entry and the problem."""


def load_yaml(text: str) -> Any:
    """Parse YAML safely, with libyaml's C loader when present (about ten times faster)."""
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader, C or Python


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_stations(text: str, source: str = "<stations>") -> StaticRegistry:
    """Parse a stations YAML document.

    The document has optional ``profiles`` (name → metrics) and a list ``stations``; a station
    gives ``metrics`` inline, names a ``profile``, or both (inline entries override the profile).

    Raises:
        StationFileError: With the station and field at fault.
    """
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        raise StationFileError(f"{source}: not valid YAML: {exc}") from None
    return stations_from_document(document, source)


def stations_from_document(document: Any, source: str = "<stations>") -> StaticRegistry:
    """Build the station registry from a parsed stations document (see :func:`parse_stations`)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("stations"), list):
        raise StationFileError(f"{source}: expected a mapping with a list 'stations'")
    profiles = document.get("profiles") or {}
    if not isinstance(profiles, Mapping):
        raise StationFileError(f"{source}: 'profiles' must be a mapping")
    stations = []
    for index, entry in enumerate(document["stations"]):
        label = f"{source}: stations[{index}]"
        if not isinstance(entry, Mapping):
            raise StationFileError(f"{label}: expected a mapping")
        label = f"{label} ({entry.get('id', '?')})"
        stations.append(_station_from_entry(entry, profiles, label))
    try:
        return StaticRegistry(stations)
    except ValueError as exc:
        raise StationFileError(f"{source}: {exc}") from None


def _station_from_entry(
    entry: Mapping[str, Any], profiles: Mapping[str, Any], label: str
) -> Station:
    fields = dict(entry)
    metrics: dict[str, Any] = {}
    profile_name = fields.pop("profile", None)
    if profile_name is not None:
        if not isinstance(profile_name, str) or profile_name not in profiles:
            raise StationFileError(f"{label}: unknown profile {profile_name!r}")
        if not isinstance(profiles[profile_name], Mapping):
            raise StationFileError(f"{label}: profile {profile_name!r} must be a mapping")
        metrics.update(profiles[profile_name])
    inline = fields.get("metrics") or {}
    if not isinstance(inline, Mapping):
        raise StationFileError(f"{label}: metrics must be a mapping of name to unit and range")
    metrics.update(inline)
    fields["metrics"] = metrics
    try:
        return Station.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise StationFileError(f"{label}: {problems}") from None


def load_stations(path: Path) -> StaticRegistry:
    """Read and parse a stations YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StationFileError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_stations(text, str(path))
