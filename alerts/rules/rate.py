"""The rate rule: a rise (or fall) faster than allowed, judged on event time.

The change at a reading is measured against the earlier readings of the window that ends at
it (the lowest one for a rise, the highest for a fall). A station that reports less often than
the window still counts: an earlier reading up to two windows back is pro-rated to the window
(30 cm over 20 minutes is 15 cm in 10). Readings are kept sorted by their own time, so a reading
that arrives out of order is judged against the readings before it in time, whenever it comes.
A rule fires once and clears on a newer reading once the condition has not held for a window.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from alerts.model import AlertEvent, EventKind
from alerts.rules.config import RateRule

NS_PER_S = 1_000_000_000
NS_PER_H = 3600 * NS_PER_S


@dataclass(frozen=True, slots=True)
class RateState:
    """A station's recent readings and which rate rules fire.

    Attributes:
        times_ns: Reading times, ascending (at most two of the longest windows back).
        values: The water levels at those times.
        firing: Rule name → the time its condition last held, for the rules that fire.
    """

    times_ns: tuple[int, ...] = ()
    values: tuple[float, ...] = ()
    firing: tuple[tuple[str, int], ...] = ()


INITIAL = RateState()


def change_cm(
    times_ns: tuple[int, ...], values: tuple[float, ...], index: int, window_ns: int, rise: bool
) -> float:
    """The largest rise (or fall, as a positive number) ending at reading ``index``.

    Readings inside the window count fully; older ones up to two windows back are pro-rated.
    """
    ts = times_ns[index]
    value = values[index]
    best = 0.0
    # Inside the window the change is unscaled: the extreme value there decides it (in C).
    inside = bisect_left(times_ns, ts - window_ns, 0, index)
    if inside < index:
        if rise:
            best = max(best, value - min(values[inside:index]))
        else:
            best = max(best, max(values[inside:index]) - value)
    horizon = ts - 2 * window_ns
    position = inside - 1
    while position >= 0:
        earlier_ts = times_ns[position]
        if earlier_ts < horizon:
            break
        delta = value - values[position] if rise else values[position] - value
        best = max(best, delta * window_ns / (ts - earlier_ts))
        position -= 1
    return best


def trend_cm_h(state: RateState, ts_ns: int) -> float | None:
    """The rise per hour up to ``ts_ns`` over the last hour (None with too few readings)."""
    end = bisect_left(state.times_ns, ts_ns + 1) - 1
    if end < 1:
        return None
    start = bisect_left(state.times_ns, state.times_ns[end] - NS_PER_H)
    if start >= end:
        start = end - 1
    span = state.times_ns[end] - state.times_ns[start]
    if span <= 0:
        return None
    return (state.values[end] - state.values[start]) * NS_PER_H / span


def evaluate(
    state: RateState,
    station_id: str,
    ts_ns: int,
    value_cm: float,
    rules: tuple[RateRule, ...],
    *,
    late: bool = False,
) -> tuple[RateState, list[AlertEvent]]:
    """Take one reliable water-level reading and judge every rate rule at its time.

    Returns:
        The new state and the events (a rule firing, or clearing on a newer reading).
    """
    if not rules:
        return state, []
    times = state.times_ns
    index = bisect_left(times, ts_ns)
    if index < len(times) and times[index] == ts_ns:
        return state, []  # the same moment twice: judged already
    newest = index == len(times)
    times = (*times[:index], ts_ns, *times[index:])
    values = (*state.values[:index], value_cm, *state.values[index:])
    firing = dict(state.firing)
    events: list[AlertEvent] = []
    longest_ns = 0
    for rule in rules:
        window_ns = int(rule.window_s * NS_PER_S)
        longest_ns = max(longest_ns, window_ns)
        rise = rule.rise_cm is not None
        limit = rule.rise_cm if rise else rule.fall_cm
        assert limit is not None
        change = change_cm(times, values, index, window_ns, rise)
        if change > limit:
            started = rule.name not in firing
            firing[rule.name] = max(ts_ns, firing.get(rule.name, ts_ns))
            if not started:
                continue  # firing already: said once
        elif newest and rule.name in firing and ts_ns - firing[rule.name] >= window_ns:
            del firing[rule.name]
        else:
            continue
        events.append(
            _event(
                station_id,
                ts_ns,
                value_cm,
                rule=rule,
                name=f"rate:{rule.name}",
                firing=change > limit,
                change=change,
                late=late,
            )
        )
    # Keep two of the longest windows behind the newest reading (the pro-rating horizon).
    keep_from = bisect_left(times, times[-1] - 2 * longest_ns)
    next_state = RateState(times[keep_from:], values[keep_from:], tuple(sorted(firing.items())))
    return next_state, events


def _event(
    station_id: str,
    ts_ns: int,
    value_cm: float,
    *,
    rule: RateRule,
    name: str,
    firing: bool,
    change: float,
    late: bool,
) -> AlertEvent:
    rise = rule.rise_cm is not None
    limit = rule.rise_cm if rise else rule.fall_cm
    minutes = rule.window_s / 60
    direction = "rose" if rise else "fell"
    if firing:
        detail = f"{station_id} {direction} {change:.0f} cm within {minutes:g} min (> {limit:g})"
    else:
        detail = f"{station_id} no longer {direction} more than {limit:g} cm in {minutes:g} min"
    rate = change * 60 / minutes if rise else -change * 60 / minutes
    return AlertEvent(
        at_ns=ts_ns,
        subject=station_id,
        kind=EventKind.RATE,
        rule=name,
        firing=firing,
        severity=rule.level,
        value=value_cm,
        trend_cm_h=rate,
        late=late,
        detail=detail,
    )
