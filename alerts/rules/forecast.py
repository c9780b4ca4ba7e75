"""Forecast warnings: a station's forecast says it will reach a higher level within the horizon.

One event per level per episode, carrying the level and ``expected_at`` (when the central
forecast crosses the threshold), with the interval's crossing times in its sentence:
"diperkirakan mencapai SIAGA sekitar pukul 14.00 WIB (80 %: 13.00-15.30)" (an en dash there).

- It fires only on a regression forecast (persistence never foresees a change, and a fallback
  forecast, an input silent, says nothing new), only for a level above the one observed, only
  when the forecast rises by ``min_rise_cm`` at least (a dry spell's wiggle near a threshold is
  not a flood), and only after ``confirm`` forecasts in a row agree: one noisy reading never
  warns.
- It never flaps: within an episode the warned level only rises. The episode ends, and the
  incident resolves, once the forecast stayed below the warned level's threshold by the
  recovery band, and the water below the level, for ``hold_s``: as the level rule steps down.
- An observed crossing supersedes it: when the level rule reaches the warned level, the
  forecast incident resolves (the level incident carries on) and the level is not warned again
  in that episode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from alerts.model import AlertEvent, EventKind
from alerts.notify.localtime import Zone
from devices.levels import Level, Thresholds, label
from forecast.models import ARX, Forecast

NS_PER_S = 1_000_000_000
NS_PER_H = 3600 * NS_PER_S
RULE = "forecast"
_LEVELS = (Level.WASPADA, Level.SIAGA, Level.AWAS)


@dataclass(frozen=True, slots=True)
class ForecastRule:
    """When a forecast warns (``forecast`` in the settings tree gives these).

    Attributes:
        confirm: Forecasts in a row that must reach the level before it is warned.
        min_rise_cm: The forecast must rise at least this much above the level now.
        hold_s: How long the forecast (and the water) must stay below a warned level before
            the episode ends.
        recovery_band_pct: ... below its threshold by this share of it.
        coverage: The interval's probability, for the message.
    """

    confirm: int = 2
    min_rise_cm: float = 10.0
    hold_s: float = 3600.0
    recovery_band_pct: float = 5.0
    coverage: float = 0.8


@dataclass(frozen=True, slots=True)
class ForecastState:
    """A station's forecast warnings.

    Attributes:
        warned: The highest level warned in this episode (NORMAL: none).
        active: Whether the forecast incident is open (False once an observation superseded it).
        streak: Forecasts in a row that reached a level above ``warned`` and the observed one.
        candidate: The lowest such level over the streak (what it would warn).
        quiet_since_ns: Since when the forecast and the water stayed below ``warned``.
    """

    warned: Level = Level.NORMAL
    active: bool = False
    streak: int = 0
    candidate: Level = Level.NORMAL
    quiet_since_ns: int | None = None


INITIAL = ForecastState()


def _reaches(value: float, threshold: float, inclusive: bool) -> bool:
    return value >= threshold if inclusive else value > threshold


def crossing_ns(
    issued_ns: int, now_cm: float, path: tuple[float, ...], threshold: float, inclusive: bool
) -> int | None:
    """When a path of hourly values (from ``now_cm`` at issue) first reaches ``threshold``,
    linear between the hours (None when it does not within the path)."""
    before = now_cm
    for lead, value in enumerate(path, start=1):
        if _reaches(value, threshold, inclusive):
            if value == before:
                return issued_ns + lead * NS_PER_H
            share = min(max((threshold - before) / (value - before), 0.0), 1.0)
            return issued_ns + int((lead - 1 + share) * NS_PER_H)
        before = value
    return None


def _threshold(thresholds: Thresholds, level: Level) -> float:
    return {
        Level.WASPADA: thresholds.waspada_cm,
        Level.SIAGA: thresholds.siaga_cm,
        Level.AWAS: thresholds.awas_cm,
    }[level]


def reached(forecast: Forecast, thresholds: Thresholds) -> Level:
    """The highest level the central forecast reaches within its horizon."""
    top = max(forecast.values, default=forecast.now_cm)
    return thresholds.level_of(top)


def evaluate(
    state: ForecastState,
    forecast: Forecast,
    *,
    thresholds: Thresholds,
    observed: Level,
    rule: ForecastRule,
    zone: Zone,
    late: bool = False,
) -> tuple[ForecastState, list[AlertEvent]]:
    """Judge one forecast of a station.

    Args:
        state: The station's forecast warnings so far.
        forecast: The newest forecast.
        thresholds: The thresholds in force at the forecast's issue time.
        observed: The level the level rule holds now.
        rule: The rule's settings.
        zone: The station's time zone (for the message).
        late: The reading behind the forecast arrived late.
    """
    if (
        state.warned == Level.NORMAL
        and not state.streak
        and (forecast.method != ARX or max(forecast.values) - forecast.now_cm < rule.min_rise_cm)
    ):
        return state, []  # the usual case, a quiet river: nothing to judge
    events: list[AlertEvent] = []
    at = forecast.issued_ns
    if state.active and observed >= state.warned:
        events.append(
            _calm(
                forecast,
                state.warned,
                late,
                f"{label(state.warned, thresholds.scheme).upper()} teramati; prakiraan "
                "digantikan pengamatan (observed: the forecast warning is superseded)",
            )
        )
        state = ForecastState(state.warned, False, 0, Level.NORMAL, None)
    if forecast.method != ARX:
        return state, events  # persistence foresees nothing: it neither warns nor calms
    top = max(forecast.values)
    foreseen = reached(forecast, thresholds)
    if top - forecast.now_cm < rule.min_rise_cm:
        foreseen = Level.NORMAL
    target = foreseen if foreseen > observed else Level.NORMAL
    if target > state.warned:
        streak = state.streak + 1
        candidate = target if state.streak == 0 else min(state.candidate, target)
        if streak >= rule.confirm:
            expected = crossing_ns(
                at,
                forecast.now_cm,
                forecast.values,
                _threshold(thresholds, candidate),
                thresholds.inclusive,
            )
            window = _window(forecast, _threshold(thresholds, candidate), thresholds.inclusive)
            events.append(
                replace(
                    _event(
                        forecast,
                        candidate,
                        state.warned,
                        True,
                        expected,
                        late,
                        _message(forecast, thresholds, candidate, expected, rule, zone),
                    ),
                    expected_range_ns=(window[0] or expected or at, window[1]),
                    range_open=window[2],
                    coverage_pct=round(rule.coverage * 100),
                )
            )
            return ForecastState(candidate, True, 0, Level.NORMAL, None), events
        return ForecastState(state.warned, state.active, streak, candidate, None), events
    state = ForecastState(state.warned, state.active, 0, Level.NORMAL, state.quiet_since_ns)
    if state.warned == Level.NORMAL:
        return state, events
    floor = _threshold(thresholds, state.warned)
    floor -= floor * rule.recovery_band_pct / 100.0
    if top >= floor or observed >= state.warned:
        return ForecastState(state.warned, state.active, 0, Level.NORMAL, None), events
    since = state.quiet_since_ns if state.quiet_since_ns is not None else at
    if at - since < rule.hold_s * NS_PER_S:
        return ForecastState(state.warned, state.active, 0, Level.NORMAL, since), events
    if state.active:
        events.append(
            _calm(
                forecast,
                state.warned,
                late,
                f"tidak lagi diperkirakan mencapai {label(state.warned, thresholds.scheme).upper()}"
                " (no longer forecast)",
            )
        )
    return ForecastState(observed, False, 0, Level.NORMAL, None), events


def _event(  # noqa: PLR0917 - an event's parts, in the order AlertEvent has them
    forecast: Forecast,
    level: Level,
    previous: Level,
    firing: bool,
    expected_ns: int | None,
    late: bool,
    detail: str,
) -> AlertEvent:
    return AlertEvent(
        at_ns=forecast.issued_ns,
        subject=forecast.station,
        kind=EventKind.FORECAST,
        rule=RULE,
        firing=firing,
        severity=level,
        previous=previous,
        value=forecast.now_cm,
        late=late,
        expected_at_ns=expected_ns,
        detail=detail,
    )


def _calm(forecast: Forecast, warned: Level, late: bool, detail: str) -> AlertEvent:
    """The event that ends the warning of ``warned``."""
    return _event(forecast, warned, warned, False, None, late, detail)


def _message(  # noqa: PLR0917 - the sentence's parts
    forecast: Forecast,
    thresholds: Thresholds,
    level: Level,
    expected_ns: int | None,
    rule: ForecastRule,
    zone: Zone,
) -> str:
    """The warning's sentence, in Bahasa Indonesia: when, in the station's own zone."""
    earliest, latest, after = _window(forecast, _threshold(thresholds, level), thresholds.inclusive)
    name = label(level, thresholds.scheme).upper()
    percent = round(rule.coverage * 100)
    when = _clock(expected_ns, zone) if expected_ns is not None else "?"
    early = _clock(earliest, zone) if earliest is not None else when
    late = f"sesudah {_clock(latest, zone)}" if after else _clock(latest, zone)
    return (
        f"diperkirakan mencapai {name} sekitar pukul {when} "
        f"{zone.abbreviation} ({percent} %: {early}–{late})"  # noqa: RUF001 - an en dash
    )


def _window(forecast: Forecast, threshold: float, inclusive: bool) -> tuple[int | None, int, bool]:
    """When the interval's high and low bounds cross ``threshold``: the earliest (None when the
    high bound never does), the latest (the horizon's end when the low bound never does), and
    whether the latest is that open end."""
    at = forecast.issued_ns
    earliest = crossing_ns(at, forecast.now_cm, forecast.high, threshold, inclusive)
    latest = crossing_ns(at, forecast.now_cm, forecast.low, threshold, inclusive)
    if latest is None:
        return earliest, forecast.at_ns(len(forecast.values)), True
    return earliest, latest, False


def _clock(ts_ns: int, zone: Zone) -> str:
    """``14.00``: the time of day in the station's zone, to five minutes (Indonesian style)."""
    step = 300 * NS_PER_S
    rounded = (ts_ns + step // 2) // step * step
    moment = datetime.fromtimestamp(rounded / NS_PER_S, tz=UTC).astimezone(zone.tzinfo)
    return f"{moment:%H.%M}"


__all__ = ["INITIAL", "RULE", "ForecastRule", "ForecastState", "crossing_ns", "evaluate", "reached"]
