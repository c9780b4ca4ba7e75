"""Recorded series and the two ways of reading them: many instants at once, or one.

A model's features are written once (:mod:`forecast.models`) against a *sampler*: for fitting,
:class:`ArraySampler` answers a whole column of issue times with numpy; live,
:class:`PointSampler` answers one instant from short Python lists in a few microseconds (a
numpy call on one value costs more than the bisect it replaces). Both answer the same
questions the same way, which a test checks value for value:

- ``level(station, t)``: the newest value at or before ``t`` (what was known then), NaN when
  there is none within ``max_stale`` of ``t``;
- ``rain(gauges, a, b)``: the mean over the gauges of the rain reported in ``(a, b]``, NaN when
  a gauge has reported nothing within ``max_stale`` before ``b`` (silent, not dry).
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from devices.readings import Reading

NS_PER_S = 1_000_000_000
NS_PER_H = 3600 * NS_PER_S
LEVEL_METRIC = "water_level_cm"
RAIN_METRIC = "rain_mm"
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Series:
    """One station's values of one metric, by time (ascending, unique)."""

    times_ns: IntArray
    values: FloatArray

    def __len__(self) -> int:
        return int(self.times_ns.size)


def series_from_readings(readings: Iterable[Reading], metric: str) -> dict[str, Series]:
    """Per station, the readings' values of ``metric`` (later duplicates of a time win)."""
    grouped: dict[str, dict[int, float]] = {}
    for reading in readings:
        value = reading.values.get(metric)
        if value is not None:
            grouped.setdefault(reading.station_id, {})[reading.ts_ns] = value
    found = {}
    for station, by_time in grouped.items():
        times = np.fromiter(sorted(by_time), dtype=np.int64, count=len(by_time))
        values = np.fromiter((by_time[t] for t in times.tolist()), np.float64, len(by_time))
        found[station] = Series(times, values)
    return found


def interpolate(series: Series, times_ns: IntArray, max_gap_ns: int) -> FloatArray:
    """Values at ``times_ns``, linear between readings no further apart than ``max_gap_ns``
    (an observed outcome to score against; NaN outside the record or across a gap)."""
    t, v = series.times_ns, series.values
    out = np.full(times_ns.shape, np.nan)
    if t.size == 0:
        return out
    right = np.searchsorted(t, times_ns, side="left")
    exact = (right < t.size) & (t[np.minimum(right, t.size - 1)] == times_ns)
    out[exact] = v[right[exact]]
    inside = ~exact & (right > 0) & (right < t.size)
    r = right[inside]
    t0, t1 = t[r - 1], t[r]
    ok = (t1 - t0) <= max_gap_ns
    w = (times_ns[inside] - t0) / np.maximum(t1 - t0, 1)
    values = v[r - 1] + w * (v[r] - v[r - 1])
    values[~ok] = np.nan
    out[inside] = values
    return out


class ArraySampler:
    """Columns of values at many instants (fitting and backtests).

    Args:
        levels: Water level series by station.
        rain: Rain series by gauge (``rain_mm`` per report).
        max_stale_ns: How old the newest reading may be and still stand for "now".
    """

    def __init__(
        self, levels: Mapping[str, Series], rain: Mapping[str, Series], max_stale_ns: int
    ) -> None:
        self._levels = levels
        self._rain = {
            gauge: (s.times_ns, np.concatenate(([0.0], np.cumsum(s.values))))
            for gauge, s in rain.items()
        }
        self._stale = max_stale_ns

    def level(self, station: str, t: Any) -> Any:
        """The newest value at or before each ``t`` (NaN when none is recent enough)."""
        series = self._levels.get(station)
        times = np.asarray(t, dtype=np.int64)
        if series is None or len(series) == 0:
            return np.full(times.shape, np.nan)
        index = np.searchsorted(series.times_ns, times, side="right") - 1
        safe = np.maximum(index, 0)
        found = series.values[safe].astype(np.float64)
        stale = (index < 0) | (times - series.times_ns[safe] > self._stale)
        found[stale] = np.nan
        return found

    def levels(self, station: str, instants: Sequence[Any]) -> list[Any]:
        """:meth:`level` at each of ``instants``."""
        return [self.level(station, t) for t in instants]

    def rain(self, gauges: Sequence[str], a: Any, b: Any) -> Any:
        """Mean rain over ``gauges`` reported in ``(a, b]`` (NaN where a gauge is silent at b)."""
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        total = np.zeros(b.shape)
        for gauge in gauges:
            entry = self._rain.get(gauge)
            if entry is None:
                return np.full(b.shape, np.nan)
            times, cumulative = entry
            upper = np.searchsorted(times, b, side="right")
            lower = np.searchsorted(times, a, side="right")
            amount = cumulative[upper] - cumulative[lower]
            newest = times[np.maximum(upper - 1, 0)]
            amount[(upper == 0) | (b - newest > self._stale)] = np.nan
            total += amount
        return total / max(len(gauges), 1)


class PointSampler:
    """The recent past of the stations a live forecaster watches, one instant at a time.

    Each station keeps ascending times and values (and, for rain gauges, running totals)
    back to ``keep_ns`` before its newest reading: what the models look back at, no more.
    """

    def __init__(self, max_stale_ns: int) -> None:
        self._stale = max_stale_ns
        self._keep: dict[str, int] = {}
        self._times: dict[str, list[int]] = {}
        self._values: dict[str, list[float]] = {}
        self._totals: dict[str, list[float]] = {}
        self._series: dict[str, tuple[list[int], list[float]]] = {}  # both, for one lookup

    def watch(self, station: str, keep_ns: int, *, rain: bool = False) -> None:
        """Keep ``keep_ns`` of ``station``'s past (the longest any model needs); a rain gauge
        also keeps running totals."""
        self._keep[station] = max(self._keep.get(station, 0), keep_ns)
        times = self._times.setdefault(station, [])
        values = self._values.setdefault(station, [])
        self._series[station] = (times, values)
        if rain:
            self._totals.setdefault(station, list(_running(self._values[station])))

    def watches(self, station: str) -> bool:
        """Whether any model looks at ``station``."""
        return station in self._keep

    def add(self, station: str, ts_ns: int, value: float) -> bool:
        """Record a reading; False when the station is not watched or the time is known."""
        times = self._times.get(station)
        if times is None:
            return False
        values = self._values[station]
        totals = self._totals.get(station)
        if times and ts_ns <= times[-1]:
            position = bisect_right(times, ts_ns)
            if position and times[position - 1] == ts_ns:
                return False
            insort(times, ts_ns)
            values.insert(position, value)
            if totals is not None:
                totals[:] = _running(values)
        else:
            times.append(ts_ns)
            values.append(value)
            if totals is not None:
                totals.append((totals[-1] if totals else 0.0) + value)
        oldest = times[-1] - self._keep[station]
        if times[0] < oldest:
            cut = bisect_right(times, oldest) - 1
            if cut > 0:
                del times[:cut]
                del values[:cut]
                if totals is not None:
                    del totals[:cut]
        return True

    def newest(self, station: str) -> tuple[int, float] | None:
        """The newest reading kept of ``station``."""
        times = self._times.get(station)
        if not times:
            return None
        return times[-1], self._values[station][-1]

    def level(self, station: str, t: Any) -> Any:
        """The newest value at or before ``t`` (NaN when none is recent enough)."""
        series = self._series.get(station)
        if series is None:
            return math.nan
        times, values = series
        index = bisect_right(times, t) - 1
        if index < 0 or t - times[index] > self._stale:
            return math.nan
        return values[index]

    def levels(self, station: str, instants: Sequence[Any]) -> list[Any]:
        """:meth:`level` at each of ascending ``instants`` (each search starts at the last)."""
        series = self._series.get(station)
        if series is None:
            return [math.nan] * len(instants)
        times, values = series
        stale = self._stale
        start = 0
        found = []
        for t in instants:
            start = bisect_right(times, t, start)
            index = start - 1
            found.append(values[index] if index >= 0 and t - times[index] <= stale else math.nan)
            start = max(index, 0)
        return found

    def rain(self, gauges: Sequence[str], a: Any, b: Any) -> Any:
        """Mean rain over ``gauges`` reported in ``(a, b]`` (NaN when a gauge is silent at b)."""
        total = 0.0
        for gauge in gauges:
            times = self._times.get(gauge)
            totals = self._totals.get(gauge)
            if not times or not totals:
                return math.nan
            upper = bisect_right(times, b)
            if upper == 0 or b - times[upper - 1] > self._stale:
                return math.nan
            lower = bisect_right(times, a)
            # Before the kept past counts as dry: a model never looks further back than kept.
            total += totals[upper - 1] - (totals[lower - 1] if lower else 0.0)
        return total / max(len(gauges), 1)

    def dump(self, station: str) -> tuple[list[int], list[float]]:
        """A station's kept past (for the engine's snapshot)."""
        return list(self._times.get(station, ())), list(self._values.get(station, ()))

    def load(self, station: str, times: Sequence[int], values: Sequence[float]) -> None:
        """Put back a past from :meth:`dump` (after a restart)."""
        if station not in self._keep:
            return
        self._times[station][:] = times
        self._values[station][:] = values
        if station in self._totals:
            self._totals[station] = list(_running(values))


def _running(values: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


__all__ = [
    "LEVEL_METRIC",
    "NS_PER_H",
    "RAIN_METRIC",
    "ArraySampler",
    "PointSampler",
    "Series",
    "interpolate",
    "series_from_readings",
]
