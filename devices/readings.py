"""The values every part of Siaga agrees on: a reading, a rejection and its reason."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why an input was rejected. Stored as the ``reason`` tag of measurement ``rejected``."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    BAD_TOPIC = "bad_topic"
    UNKNOWN_STATION = "unknown_station"
    UNDECODABLE = "undecodable"
    INVALID_JSON = "invalid_json"
    NON_FINITE = "non_finite"
    BAD_SHAPE = "bad_shape"
    TOO_MANY_READINGS = "too_many_readings"
    STATION_MISMATCH = "station_mismatch"
    MISSING_TIMESTAMP = "missing_timestamp"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_METRIC = "unknown_metric"
    OUT_OF_RANGE = "out_of_range"
    NO_METRICS = "no_metrics"
    SENSOR_FAULT = "sensor_fault"
    UNKNOWN_DEVICE = "unknown_device"
    STORAGE_REJECTED = "storage_rejected"
    DECODER_ERROR = "decoder_error"
    SPOOL_DAMAGED = "spool_damaged"


# Not frozen: a frozen dataclass costs three times as much to build, and one is built per
# reading on the hot path. Treat instances as immutable all the same.
@dataclass(slots=True)
class Reading:
    """One station's measurements at one instant.

    Its identity is ``(station_id, ts_ns)``: storing the same reading twice overwrites itself.

    Attributes:
        station_id: The station that measured it.
        ts_ns: The reading's own time, nanoseconds since the Unix epoch, UTC.
        values: Metric name to value, in the station's configured unit.
        seq: The device's sequence number, when it sends one.
    """

    station_id: str
    ts_ns: int
    values: dict[str, float]
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input, or part of one, that Siaga refused, and why.

    Attributes:
        reason: The machine-readable cause.
        detail: One sentence a person can act on.
        station_id: The station concerned, when it is known.
    """

    reason: Reason
    detail: str
    station_id: str | None = None


@dataclass(slots=True)
class Decoded:
    """What a payload decoder made of one message: readings and per-part rejections."""

    readings: list[Reading]
    rejections: list[Rejection]
