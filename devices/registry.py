"""The device registry: stations, the devices that speak for them, and how to read each one.

Stations (``config/stations.yaml``, hand-edited and reviewed in git) hold places, metrics,
river links and thresholds. Devices (``config/devices.yaml``, edited by ``siaga devices``) say
which device publishes for which station, in which payload format, with which field mapping.
LoRaWAN devices do not hold MQTT credentials themselves: their network server (The Things Stack
or ChirpStack) publishes for a whole application through one *integration* account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from devices.errors import ConfigError
from devices.stations import (
    StaticRegistry,
    Station,
    StationFileError,
    linked_csv,
    load_yaml,
    stations_from_document,
    stations_from_files,
)

Format = Literal["native", "senml", "ttn", "chirpstack"]
DIRECT_FORMATS = frozenset({"native", "senml"})
ACCOUNT_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldMap(_Model):
    """Where one source field goes.

    Attributes:
        metric: The station metric it fills.
        unit: The unit the source sends a bare number in (strings like ``"3.384 V"`` carry
            their own); converted to the station's unit.
        kind: ``distance`` for a distance-to-water sensor: level = mounting height - distance.
    """

    metric: str
    unit: str | None = None
    kind: Literal["value", "distance"] = "value"


class DeviceProfile(_Model):
    """How to read one kind of device (e.g. a Dragino DDS75 ultrasonic distance sensor).

    Attributes:
        fields: Source field name → where it goes. Unmapped source fields are ignored.
        distance_absent_mm: A distance equal to this means "no sensor connected".
        distance_min_valid_mm: A distance below this is an invalid reading (blind zone).
    """

    fields: dict[str, FieldMap] = Field(min_length=1)
    distance_absent_mm: float | None = None
    distance_min_valid_mm: float | None = None


class LoRaWANIds(_Model):
    """A LoRaWAN device's identities on its network server."""

    application_id: str = Field(min_length=1, max_length=100)
    tenant_id: str | None = Field(default=None, max_length=100)
    device_id: str | None = Field(default=None, max_length=100)
    dev_eui: str | None = None

    @field_validator("dev_eui", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        if isinstance(value, int):
            # YAML reads an all-digit EUI as a number, dropping its leading zeros. (ValueError,
            # not TypeError: pydantic turns only ValueError into a validation message.)
            message = 'dev_eui must be quoted in YAML, e.g. dev_eui: "0004A30B001C0530"'
            raise ValueError(message)  # noqa: TRY004
        return value

    @field_validator("dev_eui")
    @classmethod
    def _eui(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normalised = value.replace("-", "").replace(":", "").upper()
        if not re.fullmatch(r"[0-9A-F]{16}", normalised):
            raise ValueError("dev_eui must be 16 hexadecimal digits")
        return normalised


class Device(_Model):
    """A device that publishes for a station.

    Attributes:
        id: Its name; for native and SenML devices also its MQTT user name.
        station: The station it speaks for.
        format: Its payload format.
        profile: The field mapping, for formats that need one.
        lorawan: Network-server identities, for ``ttn`` and ``chirpstack`` devices.
        revoked: A revoked device keeps its history but may not publish.
    """

    id: str = Field(pattern=ACCOUNT_PATTERN)
    station: str
    format: Format = "native"
    profile: str | None = None
    lorawan: LoRaWANIds | None = None
    revoked: bool = False


class Integration(_Model):
    """A network server's MQTT account, publishing uplinks for one application."""

    id: str = Field(pattern=ACCOUNT_PATTERN)
    kind: Literal["ttn", "chirpstack"]
    application_id: str = Field(min_length=1, max_length=100)
    tenant_id: str | None = Field(default=None, max_length=100)
    revoked: bool = False


class WorkerAccount(_Model):
    """An ingest worker's MQTT account: it may only subscribe."""

    id: str = Field(pattern=ACCOUNT_PATTERN)
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Resolved:
    """Who a message speaks for: the station, the device (None: a native station without one).

    A revoked device still resolves, so that its messages are rejected under its own name.
    """

    station: Station
    device: Device | None
    profile: DeviceProfile | None


class Registry:
    """Stations, devices and integrations, with the lookups the ingest path needs.

    Implements :class:`devices.StationRegistry`.
    """

    def __init__(
        self,
        stations: StaticRegistry,
        profiles: Mapping[str, DeviceProfile] | None = None,
        devices: list[Device] | None = None,
        integrations: list[Integration] | None = None,
        workers: list[WorkerAccount] | None = None,
    ) -> None:
        self._stations = stations
        self.profiles = dict(profiles or {})
        self.devices: dict[str, Device] = {}
        self.integrations: dict[str, Integration] = {}
        self._direct: dict[str, Device] = {}
        self._ttn: dict[tuple[str, str], Device] = {}
        self._eui: dict[str, Device] = {}
        for device in devices or []:
            self._add_device(device)
        self.workers: dict[str, WorkerAccount] = {}
        accounts: list[Integration | WorkerAccount] = [*(integrations or []), *(workers or [])]
        for account in accounts:
            taken = self.integrations.keys() | self.devices.keys() | self.workers.keys()
            if account.id in taken:
                raise ValueError(f"account {account.id!r} is defined twice")
            if isinstance(account, Integration):
                self.integrations[account.id] = account
            else:
                self.workers[account.id] = account

    def _add_device(self, device: Device) -> None:
        where = f"device {device.id!r}"
        if device.id in self.devices:
            raise ValueError(f"{where} is defined twice")
        station = self._stations.get(device.station)
        if station is None:
            raise ValueError(f"{where}: unknown station {device.station!r}")
        profile = None
        if device.profile is not None:
            profile = self.profiles.get(device.profile)
            if profile is None:
                raise ValueError(f"{where}: unknown profile {device.profile!r}")
            for source, target in profile.fields.items():
                if target.metric not in station.metrics:
                    raise ValueError(
                        f"{where}: profile maps {source!r} to {target.metric!r}, "
                        f"which station {station.id!r} does not report"
                    )
                if target.kind == "distance" and station.mounting_height_cm is None:
                    raise ValueError(
                        f"{where}: a distance sensor needs the station's mounting_height_cm"
                    )
        elif device.format in {"ttn", "chirpstack"}:
            raise ValueError(f"{where}: {device.format} devices need a profile")
        if device.format in DIRECT_FORMATS:
            if device.lorawan is not None:
                raise ValueError(f"{where}: lorawan ids are only for ttn/chirpstack devices")
            if device.station in self._direct:
                raise ValueError(
                    f"{where}: station {device.station!r} already has a direct device "
                    f"({self._direct[device.station].id!r})"
                )
            self._direct[device.station] = device
        elif device.lorawan is None:
            raise ValueError(f"{where}: {device.format} devices need lorawan ids")
        elif device.format == "ttn":
            if device.lorawan.device_id is None:
                raise ValueError(f"{where}: ttn devices need lorawan.device_id")
            self._ttn[(device.lorawan.application_id, device.lorawan.device_id)] = device
        else:
            if device.lorawan.dev_eui is None:
                raise ValueError(f"{where}: chirpstack devices need lorawan.dev_eui")
            self._eui[device.lorawan.dev_eui] = device
        self.devices[device.id] = device

    def accounts(self) -> dict[str, Device | Integration | WorkerAccount]:
        """Every MQTT account the registry defines, by user name (LoRaWAN devices have none)."""
        found: dict[str, Device | Integration | WorkerAccount] = {
            d.id: d for d in self.devices.values() if d.format in DIRECT_FORMATS
        }
        found.update(self.integrations)
        found.update(self.workers)
        return found

    def with_changes(
        self,
        *,
        devices: list[Device] | None = None,
        integrations: list[Integration] | None = None,
        workers: list[WorkerAccount] | None = None,
    ) -> Registry:
        """A new registry with these lists replaced (validated like a loaded one)."""
        return Registry(
            self._stations,
            self.profiles,
            list(self.devices.values()) if devices is None else devices,
            list(self.integrations.values()) if integrations is None else integrations,
            list(self.workers.values()) if workers is None else workers,
        )

    # StationRegistry
    def get(self, station_id: str) -> Station | None:
        """The station with this id, or None."""
        return self._stations.get(station_id)

    def stations(self) -> list[Station]:
        """Every station, in file order."""
        return self._stations.stations()

    def provinces(self) -> Mapping[str, str]:
        """The province of each regency (the stations file's ``regencies`` section)."""
        return self._stations.provinces()

    # lookups by what a topic names
    def _resolved(self, device: Device | None, station_id: str) -> Resolved | None:
        station = self._stations.get(station_id)
        if station is None:
            return None
        profile = self.profiles.get(device.profile) if device and device.profile else None
        return Resolved(station, device, profile)

    def for_station_topic(self, station_id: str) -> Resolved | None:
        """Who publishes on ``<prefix>/<station_id>/telemetry``."""
        return self._resolved(self._direct.get(station_id), station_id)

    def for_ttn(self, application_id: str, device_id: str) -> Resolved | None:
        """The device behind a The Things Stack uplink topic."""
        device = self._ttn.get((application_id, device_id))
        return None if device is None else self._resolved(device, device.station)

    def for_chirpstack(self, dev_eui: str) -> Resolved | None:
        """The device behind a ChirpStack event topic."""
        device = self._eui.get(dev_eui.upper())
        return None if device is None else self._resolved(device, device.station)


class RegistryFileError(ConfigError, ValueError):
    """A registry file that cannot be used; the message names the entry and the problem."""


def _entries(document: Any, key: str, source: str) -> list[Any]:
    value = document.get(key) if isinstance(document, Mapping) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise RegistryFileError(f"{source}: {key!r} must be a list")
    return value


def _models(model: type[_Model], entries: list[Any], source: str, key: str) -> list[Any]:
    items = []
    for index, entry in enumerate(entries):
        try:
            items.append(model.model_validate(entry))
        except ValidationError as exc:
            label = entry.get("id", "?") if isinstance(entry, Mapping) else "?"
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise RegistryFileError(f"{source}: {key}[{index}] ({label}): {problems}") from None
    return items


def parse_registry(
    stations_text: str,
    devices_text: str = "",
    stations_source: str = "<stations>",
    devices_source: str = "<devices>",
    stations_file: Path | None = None,
) -> Registry:
    """Parse the stations document (with ``device_profiles``) and the devices document.

    Raises:
        StationFileError: The stations document is unusable.
        RegistryFileError: The devices document is unusable; names the entry and field.
    """
    try:
        raw_stations = load_yaml(stations_text)
    except yaml.YAMLError as exc:
        raise StationFileError(f"{stations_source}: not valid YAML: {exc}") from None
    if stations_file is None:
        stations = stations_from_document(raw_stations, stations_source)
    else:
        stations = stations_from_files(raw_stations, stations_file)
    profiles_raw = raw_stations.get("device_profiles") or {}
    if not isinstance(profiles_raw, Mapping):
        raise StationFileError(f"{stations_source}: 'device_profiles' must be a mapping")
    profiles = {}
    for name, entry in profiles_raw.items():
        try:
            profiles[str(name)] = DeviceProfile.model_validate(entry)
        except ValidationError as exc:
            raise StationFileError(
                f"{stations_source}: device_profiles.{name}: {exc.errors()[0]['msg']}"
            ) from None
    try:
        document = load_yaml(devices_text) if devices_text.strip() else {}
    except yaml.YAMLError as exc:
        raise RegistryFileError(f"{devices_source}: not valid YAML: {exc}") from None
    if not isinstance(document, Mapping):
        raise RegistryFileError(f"{devices_source}: expected a mapping")
    devices = _models(
        Device, _entries(document, "devices", devices_source), devices_source, "devices"
    )
    integrations = _models(
        Integration,
        _entries(document, "integrations", devices_source),
        devices_source,
        "integrations",
    )
    workers = _models(
        WorkerAccount, _entries(document, "workers", devices_source), devices_source, "workers"
    )
    try:
        return Registry(stations, profiles, devices, integrations, workers)
    except ValueError as exc:
        raise RegistryFileError(f"{devices_source}: {exc}") from None


def load_registry(stations_file: Path, devices_file: Path | None = None) -> Registry:
    """Read both registry files; a missing devices file means no devices yet."""
    try:
        stations_text = stations_file.read_text(encoding="utf-8")
        devices_text = (
            devices_file.read_text(encoding="utf-8")
            if devices_file is not None and devices_file.exists()
            else ""
        )
    except OSError as exc:
        raise RegistryFileError(f"cannot read registry: {exc}") from None
    return parse_registry(
        stations_text, devices_text, str(stations_file), str(devices_file), stations_file
    )


def registry_files(stations_file: Path, devices_file: Path | None = None) -> list[Path]:
    """The files a registry is read from: both YAML files and the CSV the first one links.

    A stations file that cannot be read or parsed links nothing (loading it reports why).
    """
    files = [stations_file] + ([devices_file] if devices_file is not None else [])
    try:
        linked = linked_csv(load_yaml(stations_file.read_text(encoding="utf-8")), stations_file)
    except (OSError, ValueError, yaml.YAMLError):
        linked = None
    return files + ([linked] if linked is not None else [])


DEVICES_HEADER = """\
# Siaga devices: which device speaks for which station, in which payload format.
# Written by `siaga devices` (add, remove, rotate, revoke); review changes in git. Credentials
# are not here: the broker's password file holds only salted hashes.
#
# Native and SenML devices connect to the broker themselves: their id is their MQTT user name
# and they may publish only on <prefix>/<station>/telemetry. LoRaWAN devices are published by
# their network server, which connects through an integration account per application.
# Workers are the ingest workers' accounts: they may only subscribe.
"""


def render_devices(registry: Registry) -> str:
    """The devices document for ``registry``: stable order, defaults left out, one line each."""

    def dump(model: _Model) -> str:
        data = model.model_dump(mode="json", exclude_defaults=True)
        return yaml.safe_dump(data, default_flow_style=True, sort_keys=False, width=1000).strip()

    sections = [DEVICES_HEADER]
    for key, items in (
        ("devices", sorted(registry.devices.values(), key=lambda d: d.id)),
        ("integrations", sorted(registry.integrations.values(), key=lambda i: i.id)),
        ("workers", sorted(registry.workers.values(), key=lambda w: w.id)),
    ):
        sections.append(f"{key}:" + ("" if items else " []"))
        sections.extend(f"  - {dump(item)}" for item in items)
    return "\n".join(sections) + "\n"
