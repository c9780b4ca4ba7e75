"""SenML JSON (RFC 8428): a pack of records, resolved against their base values.

A record's name is ``bn`` + ``n``, its time ``bt`` + ``t`` (seconds since the epoch), its unit
``u`` or else ``bu``, its value ``bv`` + ``v``. Records resolved to the same time form one
reading. The name given to the device profile is the record's ``n``; a record without one is
named by the part of its base name after the last ``:`` or ``/``. Without a profile, names are
the station's metric names. SenML sends SI units (``m``); values are converted to the station's.

Times below 2**28 s are relative to the receiver's clock at reception (RFC 8428, section 4.5.3).
A decoder is pure and does not know that moment, so such records are refused as
``bad_timestamp``: a device must send absolute times, usually one ``bt`` for the pack.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from devices.errors import InputError
from devices.formats.context import DecodeContext
from devices.formats.mapping import map_value
from devices.formats.native import json_type, parse_json, reject_whole
from devices.readings import Decoded, Reading, Reason, Rejection
from devices.registry import FieldMap
from devices.timestamps import NS_PER_S

RELATIVE_TIME_LIMIT_S = 2**28
"""SenML times below this are relative to "now" (RFC 8428, section 4.5.3)."""
MAX_TIME_S = 1e11
"""Later than the year 5138: not a plausible measurement time."""
RECORDS_PER_READING = 16
"""A pack may hold this many records per reading allowed in one message."""
MAX_REJECTIONS_PER_REASON = 4
"""Further rejections of a pack with the same reason are counted in one."""
SENML_VERSION = 10

_NAME = re.compile(r"[A-Za-z0-9][-:./_A-Za-z0-9]*", re.ASCII)
_BASE_LABELS = {"bn": str, "bu": str}
_BASE_NUMBERS = ("bt", "bv", "bs")
_NAMING_OR_VALUE_LABELS = ("n", "v", "vs", "vb", "vd", "s")


class _PackError(InputError):
    """A fault that makes the whole pack unusable (RFC 8428 says reject it)."""


def decode_senml(payload: bytes, context: DecodeContext) -> Decoded:
    """Decode a SenML JSON pack published for ``context.station``.

    Args:
        payload: The message body, ``application/senml+json``.
        context: The sender; its profile maps SenML names to metrics.

    Returns:
        One reading per distinct time, and one rejection per pack or record that cannot be used.
        String, boolean, data and sum-only records are refused as ``wrong_type``.
    """
    station_id = context.station.id
    document, problem = parse_json(payload)
    if problem is not None:
        return reject_whole(problem[0], problem[1], station_id)
    if not isinstance(document, list):
        return reject_whole(
            Reason.BAD_SHAPE,
            f"a SenML pack must be a JSON array of records, got {json_type(document)}",
            station_id,
        )
    if not document:
        return reject_whole(Reason.BAD_SHAPE, "empty SenML pack carries no records", station_id)
    record_limit = context.max_readings * RECORDS_PER_READING
    if len(document) > record_limit:
        return reject_whole(
            Reason.TOO_MANY_READINGS,
            f"{len(document)} records in one pack; the limit is {record_limit}",
            station_id,
        )
    resolver = _Resolver(context)
    try:
        for index, record in enumerate(document):
            resolver.add(index, record)
    except _PackError as exc:
        return reject_whole(Reason.BAD_SHAPE, str(exc), station_id)
    if len(resolver.times) > context.max_readings:
        return reject_whole(
            Reason.TOO_MANY_READINGS,
            f"{len(resolver.times)} distinct times in one pack; the limit is "
            f"{context.max_readings} readings",
            station_id,
        )
    readings = [
        Reading(station_id, ts_ns, values) for ts_ns, values in sorted(resolver.times.items())
    ]
    if not readings and not resolver.rejections:
        return reject_whole(
            Reason.NO_METRICS, "no record names a metric of this station", station_id
        )
    return Decoded(readings, _bounded(resolver.rejections, station_id))


def _bounded(rejections: list[Rejection], station_id: str) -> list[Rejection]:
    """At most a few rejections per reason, then one that counts the rest.

    A pack of thousands of records with the same fault must not become thousands of rejections.
    """
    kept: list[Rejection] = []
    seen: Counter[Reason] = Counter()
    for rejection in rejections:
        seen[rejection.reason] += 1
        if seen[rejection.reason] <= MAX_REJECTIONS_PER_REASON:
            kept.append(rejection)
    for reason, count in seen.items():
        if count > MAX_REJECTIONS_PER_REASON:
            more = count - MAX_REJECTIONS_PER_REASON
            kept.append(
                Rejection(reason, f"{more} more records refused for the same reason", station_id)
            )
    return kept


class _Resolver:
    """Carries the base values down the pack and collects values by time."""

    def __init__(self, context: DecodeContext) -> None:
        self.context = context
        self.times: dict[int, dict[str, float]] = {}
        self.rejections: list[Rejection] = []
        self._base_name = ""
        self._base_unit: str | None = None
        self._base_time: float = 0
        self._base_value: float | None = None

    def _reject(self, reason: Reason, detail: str) -> None:
        self.rejections.append(Rejection(reason, detail, self.context.station.id))

    def add(self, index: int, record: Any) -> None:
        where = f"record {index}: "
        if not isinstance(record, dict):
            self._reject(
                Reason.BAD_SHAPE, f"{where}expected a JSON object, got {json_type(record)}"
            )
            return
        self._take_bases(record, where)
        if not any(label in record for label in _NAMING_OR_VALUE_LABELS):
            return  # base values only, for the records that follow
        name = record.get("n", "")
        if not isinstance(name, str):
            self._reject(Reason.BAD_SHAPE, f"{where}n must be a string, got {json_type(name)}")
            return
        full_name = self._base_name + name
        if not _NAME.fullmatch(full_name):
            self._reject(Reason.BAD_SHAPE, f"{where}{full_name[:64]!r} is not a valid SenML name")
            return
        short = name or re.split(r"[:/]", full_name)[-1]
        if not short:
            self._reject(Reason.BAD_SHAPE, f"{where}name {full_name[:64]!r} ends in a separator")
            return
        field = self._field(name, full_name, short)
        if field is None:
            return  # the profile does not map it: like an unmapped field of any other format
        where = f"record {index} ({short[:64]}): "
        ts_ns = self._time(record, where)
        if ts_ns is None:
            return
        unit = record.get("u", self._base_unit)
        if not isinstance(unit, str | None):
            self._reject(Reason.WRONG_TYPE, f"{where}u must be a string, got {json_type(unit)}")
            return
        value = self._value(record, where)
        if value is None:
            return
        outcome = map_value(short, field, value, self.context, where, unit=unit or None)
        if isinstance(outcome, Rejection):
            self.rejections.append(outcome)
            return
        values = self.times.setdefault(ts_ns, {})
        if field.metric in values:
            self._reject(
                Reason.BAD_SHAPE,
                f"{where}a second value for {field.metric} at the same time",
            )
            return
        values[field.metric] = outcome

    def _take_bases(self, record: dict[str, Any], where: str) -> None:
        for label in record:
            if label.endswith("_"):
                raise _PackError(
                    f"{where}label {label[:32]!r} must be understood (it ends in '_') and is "
                    "not a SenML label Siaga knows"
                )
        version = record.get("bver")
        if version is not None and (type(version) is not int or not 1 <= version <= SENML_VERSION):
            raise _PackError(f"{where}bver {str(version)[:16]} is not a SenML version up to 10")
        for label, kind in _BASE_LABELS.items():
            if label in record and not isinstance(record[label], kind):
                raise _PackError(f"{where}{label} must be a string, got {json_type(record[label])}")
        for label in _BASE_NUMBERS:
            if label in record and _number(record[label]) is None:
                raise _PackError(
                    f"{where}{label} must be a finite number, got {json_type(record[label])}"
                )
        if "bn" in record:
            self._base_name = record["bn"]
        if "bu" in record:
            self._base_unit = record["bu"]
        if "bt" in record:
            self._base_time = record["bt"]
        if "bv" in record:
            self._base_value = record["bv"]

    def _field(self, name: str, full_name: str, short: str) -> FieldMap | None:
        candidates = dict.fromkeys(c for c in (name, full_name, short) if c)
        profile = self.context.profile
        if profile is not None:
            return next((profile.fields[c] for c in candidates if c in profile.fields), None)
        metrics = self.context.station.metrics
        metric = next((c for c in candidates if c in metrics), short)
        return FieldMap(metric=metric)

    def _time(self, record: dict[str, Any], where: str) -> int | None:
        offset = _number(record.get("t", 0))
        if offset is None:
            self._reject(
                Reason.BAD_TIMESTAMP,
                f"{where}t must be a finite number, got {json_type(record['t'])}",
            )
            return None
        seconds = self._base_time + offset
        if not math.isfinite(seconds) or seconds >= MAX_TIME_S:
            self._reject(Reason.BAD_TIMESTAMP, f"{where}time {seconds:g} s is implausible")
            return None
        if seconds < RELATIVE_TIME_LIMIT_S:
            self._reject(
                Reason.BAD_TIMESTAMP,
                f"{where}time {seconds:g} is relative to the receiver's clock (below 2**28 s); "
                "send absolute times, e.g. a bt for the pack",
            )
            return None
        if isinstance(seconds, int):
            return seconds * NS_PER_S
        # Microseconds: SenML floats carry no finer time, and this keeps equal times equal.
        return round(seconds * 1_000_000) * 1000

    def _value(self, record: dict[str, Any], where: str) -> float | None:
        if "v" in record:
            value = _number(record["v"])
            if value is None:
                self._reject(
                    Reason.WRONG_TYPE, f"{where}v must be a number, got {json_type(record['v'])}"
                )
                return None
            return value + (self._base_value or 0)
        for label, kind in (("vs", "string"), ("vb", "boolean"), ("vd", "data")):
            if label in record:
                self._reject(
                    Reason.WRONG_TYPE, f"{where}{kind} values ({label}) are not measurements"
                )
                return None
        if "s" in record:
            self._reject(Reason.WRONG_TYPE, f"{where}sums (s) are not read; send the value in v")
            return None
        if self._base_value is not None:
            return self._base_value
        self._reject(Reason.BAD_SHAPE, f"{where}record has no value")
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
