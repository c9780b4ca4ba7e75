"""Reading timestamps as devices send them: RFC 3339 strings or epoch seconds/milliseconds."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from devices.errors import InputError

NS_PER_S = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STORABLE_NS = (-(2**63) + 2, 2**63 - 2)
"""InfluxDB stores int64 nanoseconds: 1677-09-21 to 2262-04-11 (its own limits, minus one)."""
EPOCH_MS_THRESHOLD = 1e11
"""Epoch numbers at or above this are milliseconds: 1e11 seconds is the year 5138."""
EPOCH_MAX_MS = 1e14
"""Above this a number is neither plausible seconds nor milliseconds (µs or ns, most likely)."""


class TimestampError(InputError):
    """A timestamp that cannot be read as a UTC instant."""


def parse_timestamp_ns(value: object) -> int:
    """Read a device timestamp as nanoseconds since the Unix epoch.

    Args:
        value: An RFC 3339 string with a ``Z`` or numeric offset, or a number of epoch seconds
            (below 1e11) or epoch milliseconds (from 1e11 up to 1e14).

    Returns:
        Nanoseconds since the epoch, UTC.

    Raises:
        TimestampError: When the value is of another type, naive, malformed or implausible.
    """
    if isinstance(value, bool):
        raise TimestampError("ts must be an RFC 3339 string or epoch number, got a boolean")
    if isinstance(value, int | float):
        return _storable(_epoch_to_ns(value), value)
    if isinstance(value, str):
        return _storable(_rfc3339_to_ns(value), value)
    raise TimestampError(
        f"ts must be an RFC 3339 string or epoch number, got {type(value).__name__}"
    )


def _storable(ts_ns: int, value: object) -> int:
    if not STORABLE_NS[0] <= ts_ns <= STORABLE_NS[1]:
        raise TimestampError(f"ts {str(value)[:40]!r} is outside 1677-2262, which cannot be stored")
    return ts_ns


def _epoch_to_ns(value: float) -> int:
    if (isinstance(value, float) and not math.isfinite(value)) or value < 0:
        raise TimestampError(f"ts {value!r} is not a non-negative finite epoch number")
    if value >= EPOCH_MAX_MS:
        raise TimestampError(
            f"ts {value!r} is too large for epoch seconds or milliseconds (µs/ns are not accepted)"
        )
    if value >= EPOCH_MS_THRESHOLD:
        return round(value * 1_000_000) if isinstance(value, float) else value * 1_000_000
    return round(value * NS_PER_S) if isinstance(value, float) else value * NS_PER_S


def _rfc3339_to_ns(text: str) -> int:
    if len(text) > 40:
        raise TimestampError("ts string is too long for RFC 3339")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:  # RFC 3339 allows a lower-case "t" and "z"; tried second, off the common path
            moment = datetime.fromisoformat(text.upper())
        except ValueError:
            raise TimestampError(f"ts {text!r} is not RFC 3339") from None
    offset = moment.utcoffset()
    if offset is None:
        raise TimestampError(f"ts {text!r} has no UTC offset; add 'Z' or '+07:00'")
    # Aware minus aware cannot overflow at datetime's edges; integer division keeps it exact.
    seconds = (moment.replace(microsecond=0) - _EPOCH) // timedelta(seconds=1)
    return seconds * NS_PER_S + moment.microsecond * 1000


def format_rfc3339(ts_ns: int) -> str:
    """Render nanoseconds since the epoch as RFC 3339 UTC with millisecond precision."""
    seconds, rest = divmod(ts_ns, NS_PER_S)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{rest // 1_000_000:03d}Z"
