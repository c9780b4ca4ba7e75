"""InfluxDB line protocol, encoded by pure functions with exact escaping.

Escaping follows InfluxDB's rules: measurement names escape commas and spaces; tag keys, tag
values and field keys escape commas, equals signs and spaces; string field values escape double
quotes and backslashes. Two things line protocol cannot carry are refused rather than mangled:
line breaks outside string fields, and a tag value ending in a backslash (InfluxDB 1.x cannot
parse it whatever the escaping). Empty tag values are left out, as InfluxDB does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from ingest.errors import InputError

_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({'"': r"\"", "\\": "\\\\"})
_LINE_BREAKS = frozenset("\n\r")
_BACKSLASH_BEFORE_SPECIAL = re.compile(r'\\[ ,="]')

FieldValue = float | int | bool | str


class LineProtocolError(InputError):
    """A name or value that line protocol cannot represent."""


def _check_plain(text: str, what: str) -> None:
    if not text:
        raise LineProtocolError(f"{what} must not be empty")
    if _LINE_BREAKS.intersection(text):
        raise LineProtocolError(f"{what} {text[:40]!r} contains a line break")


def _check_backslashes(text: str, what: str) -> None:
    # InfluxDB 1.x drops or refuses a backslash before these, whatever the escaping.
    if _BACKSLASH_BEFORE_SPECIAL.search(text):
        raise LineProtocolError(f"{what} {text[:40]!r} has a backslash before a special character")


def escape_measurement(name: str) -> str:
    """Escape a measurement name."""
    _check_plain(name, "measurement")
    if name.startswith("#"):
        raise LineProtocolError(f"measurement {name[:40]!r} starts with '#' (a comment line)")
    _check_backslashes(name, "measurement")
    if name.endswith("\\"):
        raise LineProtocolError(f"measurement {name[:40]!r} ends in a backslash")
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(key: str) -> str:
    """Escape a tag key, tag value or field key."""
    _check_plain(key, "key")
    if key.endswith("\\"):
        raise LineProtocolError(f"key or tag value {key[:40]!r} ends in a backslash")
    return key.translate(_KEY_ESCAPES)


def escape_string_field(value: str) -> str:
    """Quote and escape a string field value."""
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def format_field_value(value: FieldValue) -> str:
    """Render a field value: floats as shortest round-trip decimals, ints with ``i``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field value {value!r} is not finite")
        return repr(value)
    return escape_string_field(value)


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """The ``measurement,tag=value,...`` prefix, tags sorted by key as InfluxDB prefers."""
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value:
            parts.append(f"{escape_key(key)}={escape_key(value)}")
    return ",".join(parts)


def escape_field_key(key: str) -> str:
    """Escape a field key (stricter than tags: InfluxDB 1.x mangles backslash sequences)."""
    _check_backslashes(key, "field key")
    return escape_key(key)


def encode_fields(fields: Mapping[str, FieldValue]) -> str:
    """The ``key=value,...`` field set; at least one field is required."""
    if not fields:
        raise LineProtocolError("a point needs at least one field")
    return ",".join(f"{escape_field_key(k)}={format_field_value(v)}" for k, v in fields.items())


def encode_line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], ts_ns: int
) -> str:
    """One point as a line of line protocol (no trailing newline), timestamp in nanoseconds."""
    return f"{series_key(measurement, tags)} {encode_fields(fields)} {ts_ns}"
