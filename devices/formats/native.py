"""Siaga's native JSON payload.

A JSON object ``{"ts": ..., "seq": 17, "water_level_cm": 182.4, ...}`` or an array of them.
``ts`` is required (RFC 3339 or epoch seconds/milliseconds), ``seq`` optional, ``station``
optional but must equal the topic's station; every other key is a metric with a number value.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from devices.errors import InputError
from devices.readings import Decoded, Reading, Reason, Rejection
from devices.timestamps import (
    EPOCH_MAX_MS,
    EPOCH_MS_THRESHOLD,
    NS_PER_S,
    STORABLE_NS,
    TimestampError,
    parse_timestamp_ns,
)

RESERVED_KEYS = frozenset({"ts", "seq", "station"})
_STORABLE_MAX_NS = STORABLE_NS[1]


class _NonFiniteError(InputError):
    """NaN or Infinity in a payload (json allows them; Siaga refuses them)."""


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteError(f"{name} is not a number JSON allows")


def _refuse_overflow(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFiniteError(f"a number overflows to infinity ({text[:40]})")
    return value


def decode_native(payload: bytes, station_id: str, max_readings: int) -> Decoded:
    """Decode a native payload published on ``station_id``'s topic.

    Args:
        payload: The message body.
        station_id: The station named by the topic.
        max_readings: The most readings one message may carry.

    Returns:
        The readings that are well formed, and one rejection per message or reading that is not.
        Unknown metrics and ranges are the validator's business: it knows the station.
    """
    document, problem = parse_json(payload)
    if problem is not None:
        return Decoded([], [Rejection(problem[0], problem[1], station_id)])
    if type(document) is dict:
        plain = plain_reading(document, station_id)
        if plain is not None:
            return Decoded([plain], [])
    return decode_document(document, station_id, max_readings)


def plain_reading(item: dict[str, Any], station_id: str) -> Reading | None:
    """The common case in one pass: integer epoch ``ts``, optional ``seq``, number metrics.

    Returns None at the first thing out of the ordinary, for :func:`decode_document` to judge
    and explain; when it returns a reading, :func:`decode_document` returns the same one (a
    property test holds the two to that). It exists because it is three times cheaper.
    """
    ts = item.get("ts")
    if type(ts) is not int or ts < 0 or "station" in item:
        return None
    ts_ns = ts * 1_000_000 if ts >= EPOCH_MS_THRESHOLD else ts * NS_PER_S
    if ts >= EPOCH_MAX_MS or ts_ns > _STORABLE_MAX_NS:
        return None
    values = item.copy()  # one C-level copy, then out with the reserved keys
    del values["ts"]
    seq = values.pop("seq", None)
    if seq is not None and (type(seq) is not int or not 0 <= seq < 2**63):
        return None
    if not values:
        return None
    for key, value in values.items():
        kind = type(value)
        if kind is not float:  # orjson never yields NaN or infinities
            if kind is int:
                values[key] = float(value)  # the same key: the dict's size does not change
            else:
                return None  # strings, booleans, null, nesting: the general path explains them
    return Reading(station_id, ts_ns, values, seq)


def decode_document(document: Any, station_id: str, max_readings: int) -> Decoded:
    """Judge a parsed native document in full, with a reason for every fault."""
    if isinstance(document, dict):
        items: list[Any] = [document]
    elif isinstance(document, list):
        items = document
        if not items:
            return reject_whole(Reason.BAD_SHAPE, "empty array carries no readings", station_id)
        if len(items) > max_readings:
            return reject_whole(
                Reason.TOO_MANY_READINGS,
                f"{len(items)} readings in one message; the limit is {max_readings}",
                station_id,
            )
    else:
        return reject_whole(
            Reason.BAD_SHAPE,
            f"payload must be a JSON object or array of objects, got {json_type(document)}",
            station_id,
        )
    readings: list[Reading] = []
    rejections: list[Rejection] = []
    for index, item in enumerate(items):
        reading = _decode_reading(item, station_id, index if len(items) > 1 else None, rejections)
        if reading is not None:
            readings.append(reading)
    return Decoded(readings, rejections)


def reject_whole(reason: Reason, detail: str, station_id: str) -> Decoded:
    """A message rejected as a whole, with one reason."""
    return Decoded([], [Rejection(reason, detail, station_id)])


def json_object(payload: bytes, station_id: str, what: str) -> dict[str, Any] | Decoded:
    """A payload that must be one JSON object (``what`` names it), or its rejection."""
    document, problem = parse_json(payload)
    if problem is not None:
        return reject_whole(problem[0], problem[1], station_id)
    if not isinstance(document, dict):
        return reject_whole(
            Reason.BAD_SHAPE, f"expected {what} object, got {json_type(document)}", station_id
        )
    return document


def parse_json(payload: bytes) -> tuple[Any, tuple[Reason, str] | None]:
    """Parse a JSON payload; on failure say why, the same way for every JSON format.

    Returns:
        The document and None, or None and ``(reason, detail)``: ``undecodable`` for bytes
        that are not UTF-8, ``non_finite`` for NaN/Infinity or an overflowing number, and
        ``invalid_json`` for anything else.
    """
    try:
        return orjson.loads(payload), None
    except orjson.JSONDecodeError as fast_error:
        # Slow path, bad input only: tell undecodable bytes and NaN/Infinity from other errors.
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, (Reason.UNDECODABLE, f"payload is not UTF-8 (byte {exc.start})")
        try:
            json.loads(text, parse_constant=_refuse_constant, parse_float=_refuse_overflow)
        except _NonFiniteError as exc:
            return None, (Reason.NON_FINITE, str(exc))
        except (ValueError, RecursionError):
            pass
        return None, (Reason.INVALID_JSON, str(fast_error)[:200])


def _decode_reading(
    item: Any, station_id: str, index: int | None, rejections: list[Rejection]
) -> Reading | None:
    """Decode one reading; structural faults reject it whole, value faults only that metric."""
    where = "" if index is None else f"reading {index}: "
    problem = _structural_problem(item, station_id, where)
    if problem is not None:
        rejections.append(problem)
        return None
    try:
        ts_ns = parse_timestamp_ns(item["ts"])
    except TimestampError as exc:
        rejections.append(Rejection(Reason.BAD_TIMESTAMP, f"{where}{exc}", station_id))
        return None
    values: dict[str, float] = {}
    metric_count = 0
    for key, value in item.items():
        if key in RESERVED_KEYS:
            continue
        metric_count += 1
        kind = type(value)
        if kind is float:
            if math.isfinite(value):
                values[key] = value
            else:
                rejections.append(
                    Rejection(Reason.NON_FINITE, f"{where}{key} is not finite", station_id)
                )
        elif kind is int:
            values[key] = float(value)
        else:
            rejections.append(
                Rejection(
                    Reason.WRONG_TYPE,
                    f"{where}{key[:64]} must be a number, got {json_type(value)}",
                    station_id,
                )
            )
    if metric_count == 0:
        rejections.append(Rejection(Reason.NO_METRICS, f"{where}no metric values", station_id))
        return None
    if not values:
        return None  # every metric was refused above, each with its reason
    return Reading(station_id, ts_ns, values, item.get("seq"))


def _structural_problem(item: Any, station_id: str, where: str) -> Rejection | None:
    if not isinstance(item, dict):
        return Rejection(
            Reason.BAD_SHAPE, f"{where}expected a JSON object, got {json_type(item)}", station_id
        )
    named = item.get("station")
    if named is not None and named != station_id:
        return Rejection(
            Reason.STATION_MISMATCH,
            f"{where}payload names station {str(named)[:64]!r} but was published on "
            f"{station_id!r}'s topic",
            station_id,
        )
    if "ts" not in item:
        return Rejection(Reason.MISSING_TIMESTAMP, f"{where}no 'ts' field", station_id)
    seq = item.get("seq")
    if seq is not None and (type(seq) is not int or not 0 <= seq < 2**63):
        return Rejection(
            Reason.WRONG_TYPE, f"{where}seq must be an integer from 0 to 2**63-1", station_id
        )
    return None


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for rejection details."""
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "object"
    return type(value).__name__
