"""Sensor faults: a stuck sensor (flatline), an impossible jump that returns (spike), a low battery.

This rule also decides which water-level readings the level and rate rules may trust. A jump
larger than ``spike_cm`` from the previous reading is held until the next reading: if that one
returns, the jump was a spike (flagged, never judged); if not, both readings are released, at
their own times, so a real flash flood is late by one reading at most. Readings that repeat a
flatlined value are kept out until the value moves again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from alerts.model import AlertEvent, EventKind
from alerts.rules.config import FaultsRule
from devices.levels import Level

NS_PER_S = 1_000_000_000
OLDEST_NS = -(2**63)
FLATLINE = "sensor_fault:flatline"
SPIKE = "sensor_fault:spike"
BATTERY = "sensor_fault:battery"
TWELVE_VOLT_LOW_V = 11.8
CELL_LOW_V = 3.3
TWELVE_VOLT_SYSTEM_V = 6.0


@dataclass(frozen=True, slots=True)
class FaultState:
    """What the fault rule remembers about a station.

    Attributes:
        newest_ns: Time of the newest level reading judged.
        last_value: The newest trusted (or released) level.
        held: A suspect jump ``(ts_ns, value)`` waiting for the next reading.
        flat_value, flat_since_ns, flat_count: The current run of identical values.
        flatline: Whether a flatline fires.
        spike_ns: Time of the latest spike while its incident fires (None: not firing).
        battery_low: Whether the battery fires.
        battery_peak_v: The highest voltage seen (tells a 12 V system from a single cell).
    """

    newest_ns: int = OLDEST_NS
    last_value: float | None = None
    held: tuple[int, float] | None = None
    flat_value: float | None = None
    flat_since_ns: int = 0
    flat_count: int = 0
    flatline: bool = False
    spike_ns: int | None = None
    battery_low: bool = False
    battery_peak_v: float = 0.0


INITIAL = FaultState()


def _event(
    station_id: str,
    ts_ns: int,
    rule: str,
    *,
    firing: bool,
    value: float | None,
    late: bool,
    text: str,
) -> AlertEvent:
    return AlertEvent(
        at_ns=ts_ns,
        subject=station_id,
        kind=EventKind.SENSOR_FAULT,
        rule=rule,
        firing=firing,
        severity=Level.NORMAL,
        value=value,
        late=late,
        detail=text,
    )


def evaluate_level(
    state: FaultState,
    station_id: str,
    ts_ns: int,
    value_cm: float,
    *,
    rule: FaultsRule,
    late: bool = False,
) -> tuple[FaultState, list[AlertEvent], list[tuple[int, float]]]:
    """Judge one water-level reading.

    Returns:
        The new state, the events, and the readings ``(ts_ns, value)`` the level and rate
        rules may now take, in time order (none, this one, or a held one and this one).
        A reading older than the newest judged is passed through untouched.
    """
    if not rule.enabled:
        return state, [], [(ts_ns, value_cm)]
    if ts_ns <= state.newest_ns:
        return state, [], [(ts_ns, value_cm)]
    events: list[AlertEvent] = []
    released: list[tuple[int, float]] = []
    spike_ns = state.spike_ns
    if spike_ns is not None and ts_ns - spike_ns >= rule.spike_clear_s * NS_PER_S:
        events.append(
            _event(
                station_id,
                ts_ns,
                SPIKE,
                firing=False,
                value=value_cm,
                late=late,
                text=f"{station_id}: no more spikes",
            )
        )
        spike_ns = None
    last = state.last_value
    held = state.held
    if held is not None:
        assert last is not None
        if abs(value_cm - last) <= rule.spike_cm / 2:
            text = (
                f"{station_id}: spike of {held[1] - last:+.0f} cm at one reading, "
                "ignored for levels"
            )
            events.append(
                _event(station_id, held[0], SPIKE, firing=True, value=held[1], late=late, text=text)
            )
            spike_ns = held[0]
            released.append((ts_ns, value_cm))
        else:
            released.extend((held, (ts_ns, value_cm)))
        held = None
    elif last is not None and abs(value_cm - last) > rule.spike_cm:
        held = (ts_ns, value_cm)
    else:
        released.append((ts_ns, value_cm))
    # Flatline over the readings let through (a held jump is not a repeat).
    flat_value, flat_since, flat_count, flatline = (
        state.flat_value,
        state.flat_since_ns,
        state.flat_count,
        state.flatline,
    )
    trusted: list[tuple[int, float]] = []
    for at_ns, value in released:
        if flat_value is not None and value == flat_value:
            flat_count += 1
        else:
            if flatline:
                text = f"{station_id}: the sensor moves again ({value:g} cm)"
                events.append(
                    _event(
                        station_id, at_ns, FLATLINE, firing=False, value=value, late=late, text=text
                    )
                )
                flatline = False
            flat_value, flat_since, flat_count = value, at_ns, 1
        stuck = (
            flat_count >= rule.flatline_min_readings
            and at_ns - flat_since >= rule.flatline_s * NS_PER_S
        )
        if stuck and not flatline:
            hours = (at_ns - flat_since) / (3600 * NS_PER_S)
            text = f"{station_id}: the same {value:g} cm for {hours:.1f} h, the sensor may be stuck"
            events.append(
                _event(station_id, at_ns, FLATLINE, firing=True, value=value, late=late, text=text)
            )
            flatline = True
        if not flatline:
            trusted.append((at_ns, value))
    newest_value = released[-1][1] if released else last
    next_state = FaultState(
        ts_ns,
        newest_value,
        held,
        flat_value,
        flat_since,
        flat_count,
        flatline,
        spike_ns,
        state.battery_low,
        state.battery_peak_v,
    )
    return next_state, events, trusted


def battery_threshold(rule: FaultsRule, peak_v: float) -> float:
    """Volts below which the battery is low: configured, or by the system's nominal voltage."""
    if rule.battery_low_v is not None:
        return rule.battery_low_v
    return TWELVE_VOLT_LOW_V if peak_v >= TWELVE_VOLT_SYSTEM_V else CELL_LOW_V


def evaluate_battery(
    state: FaultState,
    station_id: str,
    ts_ns: int,
    battery_v: float | None,
    battery_pct: float | None,
    *,
    rule: FaultsRule,
    late: bool = False,
) -> tuple[FaultState, list[AlertEvent]]:
    """Judge a reading's battery; clearing needs 3 % (of the threshold) above it."""
    if not rule.enabled or (battery_v is None and battery_pct is None):
        return state, []
    peak = max(state.battery_peak_v, battery_v or 0.0)
    low = state.battery_low
    if battery_pct is not None:
        now_low = battery_pct < rule.battery_low_pct
        recovered = battery_pct >= rule.battery_low_pct + 3.0
        shown = f"{battery_pct:g} %"
    else:
        assert battery_v is not None
        threshold = battery_threshold(rule, peak)
        now_low = battery_v < threshold
        recovered = battery_v >= threshold * 1.03
        shown = f"{battery_v:g} V"
    events: list[AlertEvent] = []
    if now_low and not low:
        low = True
        text = f"{station_id}: battery low ({shown})"
        events.append(
            _event(station_id, ts_ns, BATTERY, firing=True, value=None, late=late, text=text)
        )
    elif low and recovered:
        low = False
        text = f"{station_id}: battery recovered ({shown})"
        events.append(
            _event(station_id, ts_ns, BATTERY, firing=False, value=None, late=late, text=text)
        )
    if peak == state.battery_peak_v and low == state.battery_low:
        return state, events
    return replace(state, battery_low=low, battery_peak_v=peak), events
