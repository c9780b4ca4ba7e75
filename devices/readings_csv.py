"""Recorded readings as a long CSV, one metric a row: pure, text in, readings out.

The format of recorded series that ``siaga alerts backtest`` and ``siaga simulate replay`` take,
and of what a spreadsheet or a basin office's export gives:

    station,ts,metric,value
    ciliwung-katulampa,2020-09-21T17:49:00+07:00,water_level_cm,40

- The header names the columns, in any order and any case; others are ignored. The time column
  is ``ts`` or ``timestamp``: RFC 3339 with an offset, or epoch seconds or milliseconds.
- A UTF-8 byte order mark (what spreadsheets write) and CRLF line ends are fine.
- Rows need not be sorted; the rows of one station and time become one reading.
- A row without a value (empty, ``NaN``, ``NA``, ``null``, ``-``: how exports mark a gap) is
  skipped and counted, not an error: a recording with holes is still a recording.
- The same (station, time, metric) twice with the same value is one reading (overlapping
  exports), counted; with another value it is an error naming both lines.
- Anything else unusable (a bad time, a value that is not a number, a missing column) is an
  error naming the line.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from devices.errors import InputError
from devices.readings import Reading
from devices.timestamps import TimestampError, parse_timestamp_ns

TIME_COLUMNS = ("ts", "timestamp")
GAP_VALUES = frozenset({"", "nan", "na", "n/a", "null", "none", "-"})
_EPOCH_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?")


class ReadingsCsvError(InputError):
    """A recorded series that cannot be read; the message names the source and the line."""


@dataclass(slots=True)
class ReadingsCsv:
    """What a file held.

    Attributes:
        readings: One per (station, time), sorted by time then station.
        rows: Rows read (blank lines aside).
        gaps: Rows without a value, skipped.
        duplicates: Rows that repeated an earlier row's station, time, metric and value.
    """

    readings: list[Reading] = field(default_factory=list)
    rows: int = 0
    gaps: int = 0
    duplicates: int = 0

    def skipped(self) -> dict[str, int]:
        """Rows not made into readings, by why: ``gaps`` and ``duplicates``."""
        return {"gaps": self.gaps, "duplicates": self.duplicates}


def parse_readings_csv(
    text: str, source: str = "<csv>", *, time_columns: Sequence[str] = TIME_COLUMNS
) -> ReadingsCsv:
    """Read a long CSV of readings.

    Args:
        text: The file's text.
        source: What to call it in errors (its path).
        time_columns: The names the time column may have, the first the one errors suggest.

    Raises:
        ReadingsCsvError: A missing column, a bad time or value, a conflicting repeat.
    """
    result = ReadingsCsv()
    grouped: dict[tuple[str, int], dict[str, float]] = {}
    for line, station, ts_ns, metric, value in _rows(text, source, time_columns):
        result.rows += 1
        if value is None:
            result.gaps += 1
            continue
        values = grouped.setdefault((station, ts_ns), {})
        earlier = values.get(metric)
        if earlier is None:
            values[metric] = value
        elif earlier == value:
            result.duplicates += 1
        else:
            # Found by reading again, for the error alone: remembering the line of every row
            # would cost more than the readings themselves in a file of millions.
            first = next(
                row[0]
                for row in _rows(text, source, time_columns)
                if row[1:4] == (station, ts_ns, metric) and row[4] is not None
            )
            raise ReadingsCsvError(
                f"{source}: line {line}: {station} {metric} at this time is already on line "
                f"{first}, with {earlier:g}"
            )
    result.readings = [
        Reading(station, ts_ns, values)
        for (station, ts_ns), values in sorted(grouped.items(), key=lambda kv: kv[0][::-1])
    ]
    return result


def _rows(
    text: str, source: str, time_columns: Sequence[str]
) -> Iterator[tuple[int, str, int, str, float | None]]:
    """Each non-blank row as (line, station, time, metric, value or None for a gap)."""
    rows = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [name.strip().lower() for name in next(rows, [])]
    time_name = next((name for name in time_columns if name in header), time_columns[0])
    wanted = ("station", time_name, "metric", "value")
    missing = [name for name in wanted if name not in header]
    if missing:
        raise ReadingsCsvError(
            f"{source}: line 1: the header must name {','.join(wanted)} (missing "
            f"{', '.join(missing)})"
        )
    at = [header.index(name) for name in wanted]
    width = max(at) + 1
    # A long file repeats each time once per station and metric: parse each text once.
    times: dict[str, int] = {}
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        line = rows.line_num  # the physical line: a quoted value may span several
        where = f"{source}: line {line}"
        if len(row) < width:
            raise ReadingsCsvError(f"{where}: expected {len(header)} columns, got {len(row)}")
        station, ts_text, metric, value_text = (row[index].strip() for index in at)
        if not station or not metric:
            raise ReadingsCsvError(f"{where}: station and metric must not be empty")
        ts_ns = times.get(ts_text)
        if ts_ns is None:
            ts_ns = _time(ts_text, where)
            if len(times) >= 65_536:
                times.clear()
            times[ts_text] = ts_ns
        value = None if value_text.lower() in GAP_VALUES else _value(value_text, where)
        yield line, station, ts_ns, metric, value


def _time(text: str, where: str) -> int:
    value: object = text
    if _EPOCH_NUMBER.fullmatch(text):
        value = float(text) if any(c in text for c in ".eE") else int(text)
    try:
        return parse_timestamp_ns(value)
    except TimestampError as exc:
        raise ReadingsCsvError(f"{where}: {exc}") from None


def _value(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ReadingsCsvError(f"{where}: value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ReadingsCsvError(f"{where}: value {text!r} is not a finite number")
    return value


__all__ = ["GAP_VALUES", "TIME_COLUMNS", "ReadingsCsv", "ReadingsCsvError", "parse_readings_csv"]
