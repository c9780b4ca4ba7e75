"""From a device's own field names and units to its station's metrics.

A :class:`~devices.registry.DeviceProfile` says which source field fills which station metric
and in which unit a bare number arrives. Every value is converted to the unit the station
declares for the metric; a distance-to-water sensor becomes a water level here (level = mounting
height - distance). Ranges are not checked here: the validator checks them for every format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from devices.formats.context import DecodeContext
from devices.formats.native import json_type
from devices.formats.units import NonFiniteError, UnitError, convert, decimal_of, parse_quantity
from devices.readings import Reason, Rejection
from devices.registry import FieldMap
from devices.timestamps import TimestampError, parse_timestamp_ns

RSSI_METRIC = "rssi_dbm"
SNR_METRIC = "snr_db"


def apply_profile(
    source: Mapping[str, Any], context: DecodeContext, where: str
) -> tuple[dict[str, float], list[Rejection]]:
    """Map the fields of one decoded message to station metrics.

    Without a profile, source fields named like one of the station's metrics are taken as they
    are (still converted to the station's unit when they carry one).

    Args:
        source: The decoded fields, e.g. ``{"Bat": "3.384 V", "distance": 1234}``.
        context: The sender; its profile names the fields, its station the units.
        where: Prefix for rejection details, e.g. ``"record 2: "``; empty for a whole message.

    Returns:
        Metric → value in the station's unit, and one rejection per field that could not be
        used. Fields the profile does not name are ignored.
    """
    values: dict[str, float] = {}
    rejections: list[Rejection] = []
    for name, field in _fields(context).items():
        if name not in source:
            continue
        outcome = map_value(name, field, source[name], context, where)
        if isinstance(outcome, Rejection):
            rejections.append(outcome)
        else:
            values[field.metric] = outcome
    return values, rejections


def map_value(
    name: str,
    field: FieldMap,
    raw: Any,
    context: DecodeContext,
    where: str,
    *,
    unit: str | None = None,
) -> float | Rejection:
    """Turn one source value into the value of ``field.metric`` in the station's unit.

    Args:
        name: The source field's name, for rejection details.
        field: Where the value goes.
        raw: The value as decoded: a number or a string such as ``"3.384 V"``.
        context: The sender.
        where: Prefix for rejection details.
        unit: The unit the message itself gives for a bare number (SenML ``u``/``bu``); it
            overrides ``field.unit``, which overrides the station metric's unit.

    Returns:
        The value, or the rejection that explains why there is none.
    """
    station = context.station
    label = f"{where}{name[:64]}"
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return Rejection(
            Reason.WRONG_TYPE,
            f"{label} must be a number or a string such as '3.384 V', got {json_type(raw)}",
            station.id,
        )
    spec = station.metrics.get(field.metric)
    target_unit = spec.unit if spec is not None else None
    try:
        number, source_unit = parse_quantity(raw, unit or field.unit or target_unit or "")
        if field.kind == "distance":
            return _level(label, number, source_unit, target_unit, context)
        if target_unit is None:
            return number  # not a station metric: the validator rejects it by name
        return convert(number, source_unit, target_unit)
    except NonFiniteError as exc:
        return Rejection(Reason.NON_FINITE, f"{label} is not finite: {exc}", station.id)
    except UnitError as exc:
        return Rejection(Reason.WRONG_TYPE, f"{label}: {exc}", station.id)


def _level(
    label: str, distance: float, unit: str, target_unit: str | None, context: DecodeContext
) -> float | Rejection:
    station = context.station
    profile = context.profile
    distance_mm = convert(distance, unit, "mm")
    absent_mm = profile.distance_absent_mm if profile is not None else None
    if absent_mm is not None and distance_mm == absent_mm:
        return Rejection(
            Reason.SENSOR_FAULT,
            f"{label}: no sensor connected (distance {_number(distance_mm)})",
            station.id,
        )
    min_valid_mm = profile.distance_min_valid_mm if profile is not None else None
    if min_valid_mm is not None and distance_mm < min_valid_mm:
        return Rejection(
            Reason.SENSOR_FAULT,
            f"{label}: invalid reading: {_number(distance_mm)} mm is below the "
            f"{_number(min_valid_mm)} mm blind zone",
            station.id,
        )
    if station.mounting_height_cm is None:
        return Rejection(
            Reason.UNDECODABLE,
            f"{label}: station {station.id!r} has no mounting_height_cm to turn a distance "
            "into a level",
            station.id,
        )
    distance_cm = decimal_of(convert(distance, unit, "cm"))
    level_cm = float(decimal_of(station.mounting_height_cm) - distance_cm)
    return convert(level_cm, "cm", target_unit or "cm")


def signal_values(
    receptions: Any,
    context: DecodeContext,
    *,
    rssi_key: str = "rssi",
    snr_keys: tuple[str, ...] = ("snr",),
    snr_zero_when_absent: bool = False,
) -> tuple[dict[str, float], list[Rejection]]:
    """The best RSSI and SNR over a network server's gateway receptions.

    Signal quality is the network's metadata, not a field of the device: it becomes
    :data:`RSSI_METRIC` and :data:`SNR_METRIC` only when the station declares those metrics, and
    malformed reception entries are skipped rather than rejected.

    Args:
        receptions: The list of receptions (``rx_metadata``, ``rxInfo``); anything else is none.
        context: The sender; its station says which metrics it records, in which unit.
        rssi_key: The RSSI label in a reception, in dBm.
        snr_keys: The SNR labels in a reception, in dB, first present wins.
        snr_zero_when_absent: Count a reception with an RSSI but no SNR as SNR 0 dB: servers
            that omit zero values do so for a LoRa reception whose SNR is exactly 0.

    Returns:
        Metric → value in the station's unit, and rejections for a station unit that is not a
        signal unit.
    """
    best_rssi: float | None = None
    best_snr: float | None = None
    for entry in receptions if isinstance(receptions, list) else ():
        if not isinstance(entry, dict):
            continue
        rssi = _finite_number(entry.get(rssi_key))
        snr = next(
            (v for v in (_finite_number(entry.get(key)) for key in snr_keys) if v is not None),
            None,
        )
        if snr is None and rssi is not None and snr_zero_when_absent:
            snr = 0.0
        if rssi is not None and (best_rssi is None or rssi > best_rssi):
            best_rssi = rssi
        if snr is not None and (best_snr is None or snr > best_snr):
            best_snr = snr
    values: dict[str, float] = {}
    rejections: list[Rejection] = []
    station = context.station
    for metric, value, unit in ((RSSI_METRIC, best_rssi, "dBm"), (SNR_METRIC, best_snr, "dB")):
        spec = station.metrics.get(metric)
        if spec is None or value is None:
            continue
        try:
            values[metric] = convert(value, unit, spec.unit)
        except UnitError as exc:
            rejections.append(Rejection(Reason.WRONG_TYPE, f"{metric}: {exc}", station.id))
    return values, rejections


def rfc3339_field(value: Any, label: str, holder: str, station_id: str) -> int | Rejection:
    """A network server's RFC 3339 time field as nanoseconds, or the rejection saying why not.

    Args:
        value: The field's value (None when absent).
        label: The field's name, for the detail.
        holder: What should have carried it ("uplink", "event"), for the detail.
        station_id: The station, for the rejection.
    """
    if value is None:
        return Rejection(Reason.MISSING_TIMESTAMP, f"{holder} has no {label}", station_id)
    if not isinstance(value, str):
        return Rejection(
            Reason.BAD_TIMESTAMP,
            f"{label} must be an RFC 3339 string, got {json_type(value)}",
            station_id,
        )
    try:
        return parse_timestamp_ns(value)
    except TimestampError as exc:
        return Rejection(Reason.BAD_TIMESTAMP, f"{label}: {exc}", station_id)


def _fields(context: DecodeContext) -> Mapping[str, FieldMap]:
    if context.profile is not None:
        return context.profile.fields
    return {metric: FieldMap(metric=metric) for metric in context.station.metrics}


def _finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _number(value: float) -> str:
    return format(value, ".15g")
