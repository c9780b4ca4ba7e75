"""The level rule: NORMAL → WASPADA → SIAGA → AWAS by the thresholds in force at each reading.

Escalation fires on the first reading past a threshold (inclusive or not, as the station's
thresholds say); a jump of two levels is one event. De-escalation needs hysteresis, so that a
level hovering at a threshold never flaps: the water must fall below the threshold by the
recovery band (5 % of it by default), or stay below it for the hold time. Readings older than
the newest one already judged change nothing here (they are history; the rate rule uses them).
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.model import AlertEvent, EventKind
from alerts.rules.config import LevelRule
from devices.levels import Level, Thresholds, label

NS_PER_S = 1_000_000_000
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
    """

    level: Level = Level.NORMAL
    newest_ns: int = OLDEST_NS
    below_since_ns: int | None = None
    below_peak: Level = Level.NORMAL


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


def _describe(station_id: str, new: Level, old: Level, value_cm: float, scheme: str) -> str:
    verb = "rose to" if new > old else "fell to"
    return (
        f"{station_id} {verb} {label(new, scheme)} ({new.name}) at {value_cm:g} cm, "
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
    new = current
    below_since: int | None = None
    peak = Level.NORMAL
    if raw > current:
        new = raw
    elif raw < current:
        held = held_level(value_cm, thresholds, rule)
        if held < current:
            new = held  # fell through the band
        else:
            below_since = state.below_since_ns if state.below_since_ns is not None else ts_ns
            peak = max(state.below_peak, raw) if state.below_since_ns is not None else raw
            if ts_ns - below_since >= rule.hold_s * NS_PER_S:
                new = peak  # stayed below for the hold time
        if new != current:
            # The new level's own below-run starts now if this reading is under it already.
            below_since, peak = (ts_ns, raw) if raw < new else (None, Level.NORMAL)
    next_state = LevelState(new, ts_ns, below_since, peak)
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
        detail=_describe(station_id, new, current, value_cm, thresholds.scheme),
    )
    return next_state, [event]
