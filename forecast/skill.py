"""Forecast skill and warning verification: small pure functions over numpy arrays.

Skill is always measured against a baseline: persistence (the level now, held) at short leads.
``skill = 1 - MSE(model) / MSE(persistence)``: 0 is no better than persistence, 1 is perfect.
Warnings are verified as events, not points: a hit is a warning before the observed crossing,
a miss a crossing with none before it, a false alarm a warning with no crossing within its
horizon (plus a tolerance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def _pair(forecast: npt.ArrayLike, observed: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    f = np.asarray(forecast, dtype=np.float64)
    o = np.asarray(observed, dtype=np.float64)
    keep = np.isfinite(f) & np.isfinite(o)
    return f[keep], o[keep]


def rmse(forecast: npt.ArrayLike, observed: npt.ArrayLike) -> float:
    """Root mean square error over the pairs where both are finite (NaN when none)."""
    f, o = _pair(forecast, observed)
    return float(np.sqrt(np.mean((f - o) ** 2))) if f.size else math.nan


def nse(forecast: npt.ArrayLike, observed: npt.ArrayLike) -> float:
    """Nash-Sutcliffe efficiency: 1 - sum((f - o)^2) / sum((o - mean(o))^2).

    NaN when fewer than two pairs or the observations never vary (the ratio has no meaning).
    """
    f, o = _pair(forecast, observed)
    spread = float(np.sum((o - o.mean()) ** 2)) if o.size else 0.0
    if o.size < 2 or spread == 0.0:
        return math.nan
    return 1.0 - float(np.sum((f - o) ** 2)) / spread


def kge(forecast: npt.ArrayLike, observed: npt.ArrayLike) -> float:
    """Kling-Gupta efficiency: 1 - sqrt((r - 1)^2 + (alpha - 1)^2 + (beta - 1)^2).

    ``r`` the correlation, ``alpha`` the ratio of standard deviations, ``beta`` of means.
    """
    f, o = _pair(forecast, observed)
    if o.size < 2 or o.std() == 0.0 or f.std() == 0.0 or o.mean() == 0.0:
        return math.nan
    r = float(np.corrcoef(f, o)[0, 1])
    alpha = float(f.std() / o.std())
    beta = float(f.mean() / o.mean())
    return 1.0 - math.sqrt((r - 1.0) ** 2 + (alpha - 1.0) ** 2 + (beta - 1.0) ** 2)


def skill_score(forecast: npt.ArrayLike, baseline: npt.ArrayLike, observed: npt.ArrayLike) -> float:
    """``1 - MSE(forecast) / MSE(baseline)`` over the triples where all three are finite."""
    f = np.asarray(forecast, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    o = np.asarray(observed, dtype=np.float64)
    keep = np.isfinite(f) & np.isfinite(b) & np.isfinite(o)
    if not keep.any():
        return math.nan
    base = float(np.mean((b[keep] - o[keep]) ** 2))
    if base == 0.0:
        return math.nan
    return 1.0 - float(np.mean((f[keep] - o[keep]) ** 2)) / base


def coverage(low: npt.ArrayLike, high: npt.ArrayLike, observed: npt.ArrayLike) -> float:
    """The share of observations inside ``[low, high]`` (NaN when none is finite)."""
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    o = np.asarray(observed, dtype=np.float64)
    keep = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(o)
    if not keep.any():
        return math.nan
    return float(np.mean((o[keep] >= lo[keep]) & (o[keep] <= hi[keep])))


@dataclass(frozen=True, slots=True)
class Contingency:
    """Warnings against observed crossings, counted as events.

    Attributes:
        hits: Crossings with a warning issued before them.
        misses: Crossings with no warning before them.
        false_alarms: Warnings followed by no crossing within their horizon and tolerance.
        lead_times_s: For each hit, how long before the crossing its first warning came.
    """

    hits: int
    misses: int
    false_alarms: int
    lead_times_s: tuple[float, ...] = ()

    @property
    def pod(self) -> float:
        """Probability of detection: hits / (hits + misses)."""
        return _ratio(self.hits, self.hits + self.misses)

    @property
    def far(self) -> float:
        """False alarm ratio: false alarms / (hits + false alarms)."""
        return _ratio(self.false_alarms, self.hits + self.false_alarms)

    @property
    def csi(self) -> float:
        """Critical success index: hits / (hits + misses + false alarms)."""
        return _ratio(self.hits, self.hits + self.misses + self.false_alarms)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def verify_warnings(
    warnings_ns: Sequence[int],
    crossings_ns: Sequence[int],
    *,
    horizon_ns: int,
    tolerance_ns: int,
    earliest_ns: int | None = None,
) -> Contingency:
    """Match warnings of one station and level to its observed crossings of that level.

    A crossing is hit by the warnings issued before it and no more than ``horizon_ns +
    tolerance_ns`` earlier (its lead: from the first of them); a crossing with none is a miss.
    A warning that led to no crossing within ``horizon_ns + tolerance_ns`` after it is a false
    alarm. Warnings that merely repeat one already matched to the same crossing count once.

    Args:
        warnings_ns: When each warning was issued.
        crossings_ns: When the observed level was first reached in each episode.
        horizon_ns: How far ahead the warnings look.
        tolerance_ns: Slack for a crossing a little later than the horizon said.
        earliest_ns: Crossings before this (the start of the verified period) are not scored.
    """
    window = horizon_ns + tolerance_ns
    warnings = sorted(warnings_ns)
    crossings = sorted(c for c in crossings_ns if earliest_ns is None or c >= earliest_ns)
    used: set[int] = set()
    hits = misses = 0
    leads: list[float] = []
    for crossing in crossings:
        before = [i for i, w in enumerate(warnings) if crossing - window <= w <= crossing]
        if before:
            hits += 1
            used.update(before)
            leads.append((crossing - warnings[before[0]]) / 1e9)
        else:
            misses += 1
    false_alarms = 0
    for i, warning in enumerate(warnings):
        if i in used:
            continue
        if not any(warning <= c <= warning + window for c in crossings_ns):
            false_alarms += 1
    return Contingency(hits, misses, false_alarms, tuple(leads))


__all__ = [
    "Contingency",
    "coverage",
    "kge",
    "nse",
    "rmse",
    "skill_score",
    "verify_warnings",
]
