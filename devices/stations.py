"""Stations, the metrics they report, and the registry that answers "who is this?".

The registry is read from YAML under ``config/`` so that changes are reviewed in git. Everything
here is pure: :func:`parse_stations` takes text, :func:`load_stations` only adds reading a file.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

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
        rain_gauges: Stations reporting ``rain_mm`` over this station's catchment (its
            forecast sums their rain).
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
    rain_gauges: list[str] = Field(default_factory=list)

    @field_validator("name", "regency", "river", "district", "basin")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        # These become InfluxDB tags: no control characters, and no backslash, which
        # InfluxDB 1.x cannot parse at the end of a tag value.
        if value is not None and (any(ord(c) < 32 for c in value) or "\\" in value):
            raise ValueError("must not contain control characters or backslashes")
        return value

    @field_validator("rain_gauges")
    @classmethod
    def _gauge_ids(cls, gauges: list[str]) -> list[str]:
        for gauge in gauges:
            if not STATION_ID_PATTERN.fullmatch(gauge):
                raise ValueError(f"rain gauge {gauge!r} is not a station id")
        return gauges

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

    def provinces(self) -> Mapping[str, str]:
        """The province of each regency (regency name -> province name; empty when the
        registry names none)."""
        ...


class StaticRegistry:
    """A registry over a fixed set of stations.

    Args:
        stations: The stations.
        provinces: Each regency's province. When given, every station's regency must be in it.
    """

    def __init__(
        self, stations: Iterable[Station], provinces: Mapping[str, str] | None = None
    ) -> None:
        self._by_id: dict[str, Station] = {}
        self._provinces = dict(provinces or {})
        for station in stations:
            if station.id in self._by_id:
                raise ValueError(f"station id {station.id!r} appears twice")
            if self._provinces and station.regency not in self._provinces:
                raise ValueError(
                    f"station {station.id!r}: regency {station.regency!r} is not listed "
                    "under 'regencies'"
                )
            self._by_id[station.id] = station

    def get(self, station_id: str) -> Station | None:
        """The station with this id, or None when it is unknown."""
        return self._by_id.get(station_id)

    def stations(self) -> list[Station]:
        """Every station, in file order."""
        return list(self._by_id.values())

    def provinces(self) -> Mapping[str, str]:
        """The province of each regency, as the ``regencies`` section gives it."""
        return self._provinces


class Regency(BaseModel):
    """A regency (kabupaten) or city (kota) as the ``regencies`` section describes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    province: str = Field(min_length=1, max_length=100)

    @field_validator("province")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(c) < 32 for c in value) or value != value.strip():
            raise ValueError("must be one line without leading or trailing spaces")
        return value


def parse_regencies(value: Any, source: str) -> dict[str, str]:
    """The ``regencies`` section (``{regency: {province: name}}``) as regency -> province.

    Raises:
        StationFileError: Not a mapping, or an entry without a valid province.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise StationFileError(f"{source}: 'regencies' must be a mapping of regency names")
    found = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise StationFileError(f"{source}: regencies: {name!r} is not a regency name")
        try:
            found[name] = Regency.model_validate(entry).province
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise StationFileError(f"{source}: regencies.{name}: {problems}") from None
    return found


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


def stations_from_document(
    document: Any,
    source: str = "<stations>",
    csv_rows: Sequence[Mapping[str, Any]] | None = None,
    csv_source: str = "<stations csv>",
) -> StaticRegistry:
    """Build the station registry from a parsed stations document (see :func:`parse_stations`).

    Args:
        document: The parsed YAML document.
        source: Its name, for messages.
        csv_rows: More station entries, from the CSV file the document links with
            ``stations_csv`` (see :func:`parse_stations_csv`), validated the same way.
        csv_source: The CSV file's name, for messages.
    """
    if not isinstance(document, Mapping):
        raise StationFileError(f"{source}: expected a mapping with a list 'stations'")
    entries = document.get("stations", [] if csv_rows is not None else None)
    if not isinstance(entries, list):
        raise StationFileError(f"{source}: expected a mapping with a list 'stations'")
    profiles = document.get("profiles") or {}
    if not isinstance(profiles, Mapping):
        raise StationFileError(f"{source}: 'profiles' must be a mapping")
    builder = _StationBuilder(profiles)
    stations = []
    for index, entry in enumerate(entries):
        label = f"{source}: stations[{index}]"
        if not isinstance(entry, Mapping):
            raise StationFileError(f"{label}: expected a mapping")
        stations.append(builder.build(entry, label))
    for line, entry in enumerate(csv_rows or (), start=2):
        stations.append(builder.build(entry, f"{csv_source}: line {line}"))
    provinces = parse_regencies(document.get("regencies"), source)
    try:
        return StaticRegistry(stations, provinces)
    except ValueError as exc:
        raise StationFileError(f"{source}: {exc}") from None


CSV_COLUMNS = (
    "id",
    "name",
    "regency",
    "river",
    "district",
    "basin",
    "latitude",
    "longitude",
    "datum_m",
    "mounting_height_cm",
    "interval_s",
    "profile",
    "waspada_cm",
    "siaga_cm",
    "awas_cm",
    "threshold_scheme",
    "threshold_inclusive",
)
"""The columns a stations CSV may have (``id`` is required). Metrics come from ``profile``;
one thresholds version from the ``waspada_cm`` … ``threshold_inclusive`` columns. River links
and versioned thresholds need the YAML."""
_THRESHOLD_COLUMNS = {
    "waspada_cm": "waspada_cm",
    "siaga_cm": "siaga_cm",
    "awas_cm": "awas_cm",
    "threshold_scheme": "scheme",
    "threshold_inclusive": "inclusive",
}


def parse_stations_csv(text: str, source: str = "<stations csv>") -> list[dict[str, Any]]:
    """Station entries from a CSV export: a header of :data:`CSV_COLUMNS`, one station a row.

    An empty cell leaves the field unset. Values stay text: the validation that checks YAML
    entries converts them (``"-4.47"`` is a valid latitude) and words the errors the same way.

    Raises:
        StationFileError: A bad header or a row of the wrong width.
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise StationFileError(f"{source}: empty; expected a header line")
    columns = [name.strip() for name in header]
    unknown = [name for name in columns if name not in CSV_COLUMNS]
    if unknown or "id" not in columns or len(set(columns)) != len(columns):
        raise StationFileError(
            f"{source}: header must name distinct columns among {', '.join(CSV_COLUMNS)} "
            f"including id (unknown: {', '.join(unknown) or 'none'})"
        )
    thresholds = [
        (i, _THRESHOLD_COLUMNS[c]) for i, c in enumerate(columns) if c in _THRESHOLD_COLUMNS
    ]
    plain = [(i, c) for i, c in enumerate(columns) if c not in _THRESHOLD_COLUMNS]
    width = len(columns)
    intern = sys.intern
    rows: list[dict[str, Any]] = []
    for line, cells in enumerate(reader, start=2):
        if len(cells) != width:
            if not cells:
                continue
            raise StationFileError(f"{source}: line {line}: {len(cells)} cells, expected {width}")
        # Regencies, rivers and profiles repeat across thousands of rows: keep one copy.
        entry: dict[str, Any] = {c: intern(cells[i]) for i, c in plain if cells[i] != ""}
        version = {name: cells[i] for i, name in thresholds if cells[i] != ""}
        if version:
            entry["thresholds"] = [version]
        rows.append(entry)
    return rows


_SIMPLE_STRINGS = {"name": 200, "regency": 100, "river": 100, "district": 100, "basin": 100}
_REQUIRED_STRINGS = frozenset({"id", "name", "regency"})
_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?")
_INTEGER_TEXT = re.compile(r"[1-9][0-9]{0,8}")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\\]")
_FIELD_ORDER = tuple(Station.model_fields)
_DEFAULTS: dict[str, Any] = {
    name: info.default
    for name, info in Station.model_fields.items()
    if not info.is_required() and info.default_factory is None
}


def _number(value: Any) -> float | None:
    """A plain number as pydantic would read it, or None when only pydantic can say."""
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is str and _NUMBER_TEXT.fullmatch(value):
        return float(value)
    return None


class _StationBuilder:
    """Validates station entries: a fast path for plain ones, pydantic for everything else.

    At national size most entries are plain: strings, numbers and a profile. For those the
    fast path checks exactly what :class:`Station` checks and builds the model without
    re-validating, sharing one metrics mapping per profile and one thresholds list per distinct
    version. Anything it is not sure of goes through ``Station.model_validate``, so the result
    and every error message are the same as validating each entry alone.
    """

    def __init__(self, profiles: Mapping[str, Any]) -> None:
        self._profiles = profiles
        self._profile_metrics: dict[str, dict[str, MetricSpec]] = {}
        self._thresholds: dict[tuple[tuple[str, Any], ...], list[Thresholds]] = {}
        self._thresholds_list = TypeAdapter(list[Thresholds])

    def build(self, entry: Mapping[str, Any], label: str) -> Station:
        label = f"{label} ({entry.get('id', '?')})"
        station = self._fast(entry)
        if station is not None:
            return station
        station = _station_from_entry(entry, self._profiles, label)
        profile = entry.get("profile")
        if isinstance(profile, str) and not entry.get("metrics"):
            self._profile_metrics.setdefault(profile, station.metrics)
        return station

    def _fast(self, entry: Mapping[str, Any]) -> Station | None:
        profile = entry.get("profile")
        metrics = self._profile_metrics.get(profile) if type(profile) is str else None
        if metrics is None or entry.get("metrics"):
            return None
        fields: dict[str, Any] = {}
        for key, value in entry.items():
            if key in _SIMPLE_STRINGS:
                if type(value) is not str or not 0 < len(value) <= _SIMPLE_STRINGS[key]:
                    return None
                if _UNPRINTABLE.search(value):
                    return None
                fields[key] = value
            elif key in {"latitude", "longitude", "datum_m", "mounting_height_cm"}:
                number = _number(value)
                if number is None:
                    return None
                fields[key] = number
            elif key == "id":
                if type(value) is not str or not STATION_ID_PATTERN.fullmatch(value):
                    return None
                fields[key] = value
            elif key == "interval_s":
                interval = value
                if type(value) is str and _INTEGER_TEXT.fullmatch(value):
                    interval = int(value)
                if type(interval) is not int or interval <= 0:
                    return None
                fields[key] = interval
            elif key == "thresholds":
                versions = self._threshold_versions(value)
                if versions is None:
                    return None
                fields[key] = versions
            elif key not in {"profile", "metrics"}:
                return None
        if not _REQUIRED_STRINGS.issubset(fields) or "latitude" not in fields:
            return None
        if "longitude" not in fields or not -90 <= fields["latitude"] <= 90:
            return None
        if not -180 <= fields["longitude"] <= 180:
            return None
        if not fields.get("mounting_height_cm", 1.0) > 0:  # also refuses NaN
            return None
        fields["metrics"] = metrics
        return _trusted_station(fields)

    def _threshold_versions(self, value: Any) -> list[Thresholds] | None:
        if type(value) is not list or not all(type(v) is dict for v in value):
            return None
        try:
            key = tuple((k, v) for version in value for k, v in sorted(version.items()))
            hash(key)
        except TypeError:
            return None
        versions = self._thresholds.get(key)
        if versions is None:
            try:
                versions = self._thresholds_list.validate_python(value)
            except ValidationError:
                return None  # the full path words the error
            self._thresholds[key] = versions
        return versions


def _trusted_station(fields: dict[str, Any]) -> Station:
    """A :class:`Station` from fields already checked, without validating them again.

    ``Station.model_construct`` does the same but costs more than validating; this sets the
    four attributes pydantic's own constructor sets.
    """
    given = set(fields)
    values = {
        name: fields[name] if name in fields else _DEFAULTS.get(name, _EMPTY_LIST)
        for name in _FIELD_ORDER
    }
    for name in ("downstream", "thresholds", "rain_gauges"):
        if values[name] is _EMPTY_LIST:
            values[name] = []
    station = Station.__new__(Station)
    set_attribute = object.__setattr__
    set_attribute(station, "__dict__", values)
    set_attribute(station, "__pydantic_fields_set__", given)
    set_attribute(station, "__pydantic_extra__", None)
    set_attribute(station, "__pydantic_private__", None)
    return station


_EMPTY_LIST: list[Any] = []


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


def linked_csv(document: Any, yaml_path: Path) -> Path | None:
    """The CSV file a stations document links with ``stations_csv`` (relative to the YAML).

    Raises:
        StationFileError: ``stations_csv`` is not a file name.
    """
    if not isinstance(document, Mapping) or document.get("stations_csv") is None:
        return None
    name = document["stations_csv"]
    if not isinstance(name, str) or not name.strip():
        raise StationFileError(f"{yaml_path}: 'stations_csv' must be a file name")
    return yaml_path.parent / name


def stations_from_files(document: Any, yaml_path: Path) -> StaticRegistry:
    """The registry of a parsed stations YAML plus the CSV it links, if any."""
    csv_path = linked_csv(document, yaml_path)
    if csv_path is None:
        return stations_from_document(document, str(yaml_path))
    try:
        text = csv_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StationFileError(f"{csv_path}: cannot read: {exc.strerror}") from None
    rows = parse_stations_csv(text, str(csv_path))
    return stations_from_document(document, str(yaml_path), rows, str(csv_path))


def load_stations(path: Path) -> StaticRegistry:
    """Read and parse a stations YAML file (and the CSV file it links, if any)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StationFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        raise StationFileError(f"{path}: not valid YAML: {exc}") from None
    return stations_from_files(document, path)
