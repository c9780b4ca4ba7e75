"""The level rule: NORMAL → WASPADA → SIAGA → AWAS by the thresholds in force at each reading.

Escalation fires on the first reading past a threshold (inclusive or not, as the station's
thresholds say); a jump of two levels is one event. De-escalation needs hysteresis, so that a
level hovering at a threshold never flaps: the water must fall below the threshold by the
recovery band (5 % of it by default), or stay below it for the hold time. Readings older than
the newest one already judged change nothing here (they are history; the rate rule uses them).

On a tidal reach (``tidal`` in the rule) every flood tide of a flood crosses a threshold and
every ebb falls back, twice a day. There the rule judges de-escalation on the tidal envelope:
the highest level over the last tidal day (both high waters of a lunar day, ~24.84 h), kept as
a bounded ring of hourly maxima. The station de-escalates only once a whole tidal day's high
waters stayed below the threshold by the band (or below it for the hold time), and never
before the ring covers a whole tidal day (a new station, a long silence, an older state).
Escalation stays on the reading itself: a high water past a threshold escalates at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

from alerts.model import AlertEvent, EventKind
from alerts.rules.config import LevelRule
from devices.levels import Level, Thresholds, label

NS_PER_S = 1_000_000_000
BUCKET_NS = 3600 * NS_PER_S
"""The tidal envelope keeps one maximum per hour of event time."""
OLDEST_NS = -(2**63)
RULE = "level"


@dataclass(frozen=True, slots=True)
class LevelState:
    """Where a station's level stands.

    Attributes:
        level: The level in force.
        newest_ns: Time of the newest reading judged.
        below_since_ns: Since when readings have stayed below the current level's threshold
            (without falling through the band); None when the latest one was not below.
        below_peak: The highest level read during that time (where a hold de-escalates to).
        tide: Tidal stations only: ``(hour, highest level in it)`` for the hours of the last
            tidal day that had readings, oldest first (at most :func:`tide_slots` of them).
            For a tidal station "readings" above means this envelope.
    """

    level: Level = Level.NORMAL
    newest_ns: int = OLDEST_NS
    below_since_ns: int | None = None
    below_peak: Level = Level.NORMAL
    tide: tuple[tuple[int, float], ...] = ()


INITIAL = LevelState()


def band_cm(threshold_cm: float, rule: LevelRule) -> float:
    """The recovery band below a threshold."""
    if rule.recovery_band_cm is not None:
        return rule.recovery_band_cm
    return threshold_cm * rule.recovery_band_pct / 100.0


def held_level(value_cm: float, thresholds: Thresholds, rule: LevelRule) -> Level:
    """The highest level whose threshold, lowered by its band, the value still reaches."""
    held = Level.NORMAL
    for start, candidate in (
        (thresholds.waspada_cm, Level.WASPADA),
        (thresholds.siaga_cm, Level.SIAGA),
        (thresholds.awas_cm, Level.AWAS),
    ):
        floor = start - band_cm(start, rule)
        if value_cm >= floor if thresholds.inclusive else value_cm > floor:
            held = candidate
    return held


def tide_slots(rule: LevelRule) -> int:
    """Hourly maxima kept: a tidal day and two hours, so the hours kept always reach a whole
    tidal day back even for a gauge that reports only every two hours."""
    return math.ceil(rule.tidal_day_s * NS_PER_S / BUCKET_NS) + 2


def record_tide(
    tide: tuple[tuple[int, float], ...], ts_ns: int, value_cm: float, rule: LevelRule
) -> tuple[tuple[int, float], ...]:
    """The hourly maxima with a reading at ``ts_ns`` (not older than any before) added."""
    hour = ts_ns // BUCKET_NS
    if tide and tide[-1][0] == hour:
        if value_cm <= tide[-1][1]:
            return tide
        return (*tide[:-1], (hour, value_cm))
    oldest = hour - tide_slots(rule) + 1
    start = 0
    while start < len(tide) and tide[start][0] < oldest:
        start += 1
    return (*tide[start:], (hour, value_cm))


def envelope(tide: tuple[tuple[int, float], ...], ts_ns: int, rule: LevelRule) -> float | None:
    """The highest level of the last tidal day, or None until the hours kept cover one
    without a silence longer than ``tidal_max_gap_s`` (one that may have hidden a high water).
    """
    if not tide or tide[0][0] * BUCKET_NS > ts_ns - int(rule.tidal_day_s * NS_PER_S):
        return None
    # Readings in hours h and h + n: a silence of n - 1 to n + 1 hours (judged in whole hours).
    max_step = max(1, int(rule.tidal_max_gap_s * NS_PER_S // BUCKET_NS))
    highest = tide[0][1]
    for (before, _), (hour, value) in pairwise(tide):
        if hour - before > max_step:
            return None
        highest = max(highest, value)
    return highest


def _describe(
    station_id: str,
    new: Level,
    old: Level,
    value_cm: float,
    scheme: str,
    *,
    high_water_cm: float | None,
) -> str:
    verb = "rose to" if new > old else "fell to"
    tidal = "" if high_water_cm is None else f"; the tidal day's high water {high_water_cm:g} cm"
    return (
        f"{station_id} {verb} {label(new, scheme)} ({new.name}) at {value_cm:g} cm{tidal}, "
        f"from {label(old, scheme)}"
    )


def evaluate(
    state: LevelState,
    station_id: str,
    ts_ns: int,
    value_cm: float,
    *,
    thresholds: Thresholds,
    rule: LevelRule,
    late: bool = False,
    trend_cm_h: float | None = None,
) -> tuple[LevelState, list[AlertEvent]]:
    """Judge one reliable water-level reading.

    Args:
        state: The station's level state.
        station_id: The station.
        ts_ns: The reading's own time.
        value_cm: Its water level.
        thresholds: The thresholds in force at ``ts_ns``.
        rule: Band and hold time.
        late: The reading arrived late (marks the event).
        trend_cm_h: The current rise rate, for the event.

    Returns:
        The new state and at most one event.
    """
    if ts_ns <= state.newest_ns:
        return state, []
    current = state.level
    raw = thresholds.level_of(value_cm)
    tide: tuple[tuple[int, float], ...] = ()
    judged, judged_raw = value_cm, raw  # what de-escalation is judged on
    if rule.tidal:
        tide = record_tide(state.tide, ts_ns, value_cm, rule)
        high_water = envelope(tide, ts_ns, rule)
        if high_water is None:
            judged_raw = current  # until the envelope covers a tidal day, nothing steps down
        else:
            judged, judged_raw = high_water, thresholds.level_of(high_water)
    new = current
    below_since: int | None = None
    peak = Level.NORMAL
    if raw > current:
        new = raw
    elif judged_raw < current:
        held = held_level(judged, thresholds, rule)
        if held < current:
            new = held  # fell through the band
        else:
            below_since = state.below_since_ns if state.below_since_ns is not None else ts_ns
            peak = (
                max(state.below_peak, judged_raw)
                if state.below_since_ns is not None
                else judged_raw
            )
            if ts_ns - below_since >= rule.hold_s * NS_PER_S:
                new = peak  # stayed below for the hold time
        if new != current:
            # The new level's own below-run starts now if this reading is under it already.
            below_since, peak = (ts_ns, judged_raw) if judged_raw < new else (None, Level.NORMAL)
    next_state = LevelState(new, ts_ns, below_since, peak, tide)
    if new == current:
        return next_state, []
    event = AlertEvent(
        at_ns=ts_ns,
        subject=station_id,
        kind=EventKind.LEVEL,
        rule=RULE,
        firing=new > Level.NORMAL,
        severity=new,
        previous=current,
        value=value_cm,
        trend_cm_h=trend_cm_h,
        late=late,
        detail=_describe(
            station_id,
            new,
            current,
            value_cm,
            thresholds.scheme,
            high_water_cm=judged if rule.tidal and new < current else None,
        ),
    )
    return next_state, [event]
