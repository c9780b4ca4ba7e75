"""The alert engine: readings in, alert events and incident transitions out. No I/O of its own.

The process around it (``siaga alerts run``) feeds it every reading of the stations in its
scope with :meth:`Engine.process`, calls :meth:`Engine.tick` for the rules that depend on time
alone (no data, pending incidents), and makes each :class:`Step` durable together with the
inputs that caused it (:mod:`alerts.journal`) before acknowledging the readings; now and then
it saves :meth:`Engine.dirty_state` as a snapshot. Both methods depend on nothing but the state
and their arguments, so after a crash :meth:`Engine.restore` with the last snapshot and the
journal's replay gives the same decisions again; a reading seen before is recognised by
``(station, ts)`` and transitions nothing twice.

Per station, readings pass the fault rule first (which decides which water levels to trust),
then the level and rate rules; their events feed the upstream rule, and every event moves its
incident (one per ``(subject, rule)``) through pending → firing → resolved.

Time is each station's own: the decisions that wait for time to pass (a held jump released,
a pending incident promoted, a silence) run on the station's clock, its newest reading's time
advanced by the wall time since that reading arrived (:func:`station_now`). A live station's
clock is the wall clock; a back-dated stream (a replay, the demo, a store-and-forward backlog)
whose readings arrive faster than their own time passes is never overtaken by a tick, so a
tick decides only what that stream's next reading would decide too, and the same way: a
reading takes its station's clock to its own time and decides first whatever that moment
decides (:meth:`Engine._advance`).
"""

from __future__ import annotations

import heapq
import time
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import accumulate
from operator import sub
from typing import Any

import orjson

from alerts.model import AlertEvent, EventKind, IncidentState, Transition
from alerts.notify.localtime import Zone, zone_for
from alerts.rules import LEVEL_METRIC, faults, level, nodata, rate, upstream
from alerts.rules import forecast as forecasting
from alerts.rules.config import TIDAL_DAY_S, RulesConfig, RuleSet
from alerts.settings import AlertsSettings
from devices.health import HealthTracker, StationHealth
from devices.levels import Level, Thresholds
from devices.readings import Reading
from devices.stations import Station, StationRegistry
from forecast.live import LiveForecaster
from forecast.series import RAIN_METRIC

NS_PER_S = 1_000_000_000
STATE_VERSION = 4
"""The persisted state's format. 2 added a tidal station's hourly maxima (``lv[4]``); states
of version 1 still restore (with no maxima: a tidal station then waits for a whole tidal day
of readings before it de-escalates). 3 stores the rate window's reading times (``rt[0]``) or
the remembered ones (``sn``) as a count when they are the other's newest ones (a third fewer
bytes in a checkpoint). 4 adds the wall time the newest reading arrived, as its lag behind
it (``ar``, absent when none). Versions 1 to 3 still restore, as if every station were live
(arrived at its own time)."""
READABLE_VERSIONS = frozenset({1, 2, 3, STATE_VERSION})
ENGINE_KEY = "engine:"
"""The state key of the engine itself (its start: stations never seen count from it)."""
FORECAST_PREFIX = "forecast:"
"""State keys of the forecaster: ``forecast:<station>`` holds the station's forecast warnings
and the recent past the models read of it, in a format of their own (``v`` 1) beside the
stations' (:data:`STATE_VERSION`)."""
SEEN_PER_STATION = 64
"""How many recent reading times each station remembers to recognise a redelivery. A reading
older than all of them (and not among them) is taken as handled: it could change no decision."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which stations this engine evaluates (None: no restriction on that side).

    Attributes:
        stations: Only these station ids ...
        regencies: ... or the stations of these regencies (a station in either is in scope).
    """

    stations: frozenset[str] | None = None
    regencies: frozenset[str] | None = None

    def includes(self, station: Station) -> bool:
        """Whether ``station`` is evaluated here."""
        if self.stations is None and self.regencies is None:
            return True
        return (self.stations is not None and station.id in self.stations) or (
            self.regencies is not None and station.regency in self.regencies
        )


@dataclass(slots=True)
class Step:
    """What one call decided.

    Attributes:
        events: Every rule decision, in order.
        transitions: The incident changes those events caused (what notifiers consume).
        duplicates: Readings recognised as seen before (redeliveries), not evaluated again.
        ignored: Readings of stations unknown or outside this engine's scope.
    """

    events: list[AlertEvent] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    duplicates: int = 0
    ignored: int = 0

    def extend(self, other: Step) -> None:
        """Append another step's results."""
        self.events.extend(other.events)
        self.transitions.extend(other.transitions)
        self.duplicates += other.duplicates
        self.ignored += other.ignored


@dataclass(frozen=True, slots=True)
class _Incident:
    state: IncidentState
    severity: Level
    since_ns: int
    kind: EventKind


@dataclass(slots=True)
class _StationState:
    level: level.LevelState = level.INITIAL
    rate: rate.RateState = rate.INITIAL
    faults: faults.FaultState = faults.INITIAL
    warned: Level = Level.NORMAL
    last_seen_ns: int | None = None
    no_data: bool = False
    seen: list[int] = field(default_factory=list)
    arrived_ns: int | None = None  # when the reading of last_seen_ns arrived (not before it)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A station's compiled rules (rebuilt when the registry or the rules change)."""

    station: Station
    rules: RuleSet
    thresholds: tuple[Thresholds, ...]
    downstream: tuple[upstream.Reach, ...]
    group: str

    def thresholds_at(self, ts_ns: int) -> Thresholds | None:
        versions = self.thresholds
        if len(versions) == 1:
            only = versions[0]
            return only if only.valid_from_ns <= ts_ns else None
        found = None
        for version in versions:
            if version.valid_from_ns <= ts_ns:
                found = version
            else:
                break
        return found


_ALERTS = AlertsSettings.model_fields  # the settings tree is the one source of every default


class Engine:
    """Evaluates the flood rules over readings; holds every station's rule and incident state.

    Args:
        registry: Stations, thresholds, intervals and river links.
        rules: The rules file (None: the defaults, which alert from the registry alone).
        scope: The stations this engine evaluates (a country splits by regency).
        late_lag_s: A reading older than this when it arrives is a backlog: its events say
            ``late`` (``alerts.late_lag_s``).
        clock: Wall clock in ns, read once for the start (the no-data rule counts a station
            never seen from then).
        started_ns: The start, instead of the clock (backtests use the first reading's time).
        health_window_s: Device health's completeness window (``alerts.health_window_s``).
        forecaster: Fitted models that forecast stations as readings arrive (None: no
            forecasts); their forecasts pass the ``forecast`` rule.
        forecast_rule: When a forecast warns.
    """

    def __init__(
        self,
        registry: StationRegistry,
        rules: RulesConfig | None = None,
        *,
        scope: Scope | None = None,
        late_lag_s: float = _ALERTS["late_lag_s"].default,
        clock: Callable[[], int] = time.time_ns,
        started_ns: int | None = None,
        health_window_s: float = _ALERTS["health_window_s"].default,
        forecaster: LiveForecaster | None = None,
        forecast_rule: forecasting.ForecastRule | None = None,
    ) -> None:
        self._rules = rules or RulesConfig()
        self._scope = scope or Scope()
        self._late_lag_ns = int(late_lag_s * NS_PER_S)
        self.started_ns = clock() if started_ns is None else started_ns
        self._states: dict[str, _StationState] = {}
        self._incidents: dict[str, dict[str, _Incident]] = {}
        self._groups_firing: set[str] = set()
        self._due: list[tuple[int, str]] = []  # (overdue at, station): at most one per station
        self._armed: set[str] = set()
        self._active_groups: set[str] = set()
        self._pending: set[tuple[str, str]] = set()
        # The same incidents by the station whose clock promotes them (its own readings can).
        self._pending_by_clock: dict[str, set[tuple[str, str]]] = {}
        self._holding: set[str] = set()  # stations with a suspect jump awaiting its next reading
        self._dirty: set[str] = set()
        self._plans: dict[str, _Plan] = {}
        self._groups: dict[str, list[str]] = {}
        self._registry = registry
        self.health = HealthTracker(registry, window_s=health_window_s)
        self.forecaster = forecaster
        self._forecast_rule = forecast_rule or forecasting.ForecastRule()
        # On a tidal reach every flood tide's forecast crosses what every ebb's falls back
        # from: an episode there ends only after a tidal day below (as the level rule's does).
        self._tidal_forecast_rule = replace(
            self._forecast_rule, hold_s=max(self._forecast_rule.hold_s, TIDAL_DAY_S)
        )
        self._forecasts: dict[str, forecasting.ForecastState] = {}
        self._zones: dict[str, Zone] = {}
        self._compile()
        self._dirty.add(ENGINE_KEY)

    # -- configuration --------------------------------------------------------------------

    def _compile(self) -> None:
        registry = self._registry
        plans: dict[str, _Plan] = {}
        groups: dict[str, list[str]] = {}
        listed = {s: group.name for group in self._rules.groups for s in group.stations}
        for station in registry.stations():
            if not self._scope.includes(station):
                continue
            rules = self._rules.for_station(station)
            reach = (
                upstream.reaches(station, registry.get, rules.upstream.max_travel_s)
                if rules.upstream.enabled
                else ()
            )
            group = listed.get(station.id) or f"regency:{station.regency}"
            plans[station.id] = _Plan(
                station,
                rules,
                tuple(sorted(station.thresholds, key=lambda t: t.valid_from_ns)),
                reach,
                group,
            )
            groups.setdefault(group, []).append(station.id)
        self._plans = plans
        self._groups = groups
        self._due = []
        self._armed = set()
        for station_id in plans:
            self._arm(station_id)
        self._holding = {s for s, state in self._states.items() if state.faults.held is not None}
        self._active_groups = {g for g in self._groups_firing if g in groups} | {
            plans[s].group for s, state in self._states.items() if state.no_data and s in plans
        }

    def use_registry(self, registry: StationRegistry) -> None:
        """Follow a reloaded registry; states of stations that remain are kept."""
        self._registry = registry
        self.health.use_registry(registry)
        self._zones.clear()
        self._compile()

    def use_rules(self, rules: RulesConfig) -> None:
        """Follow a reloaded rules file; states are kept."""
        self._rules = rules
        self._compile()

    @property
    def rules(self) -> RulesConfig:
        """The rules in force."""
        return self._rules

    def in_scope(self, station_id: str) -> bool:
        """Whether this engine evaluates ``station_id``."""
        return station_id in self._plans

    # -- evaluation -----------------------------------------------------------------------

    def process(self, readings: Sequence[Reading], now_ns: int) -> Step:
        """Evaluate readings that arrived at ``now_ns`` (any order, duplicates allowed).

        Within the call, readings are judged in the order of their own time. Device health
        takes every reading of the stations in scope.
        """
        step = Step()
        ordered = sorted(readings, key=_reading_time)
        fresh: list[Reading] = []
        plans = self._plans
        for reading in ordered:
            plan = plans.get(reading.station_id)
            if plan is None:
                step.ignored += 1
                continue
            fresh.append(reading)
            state = self._states.get(reading.station_id)
            if state is None:
                state = self._states[reading.station_id] = _StationState()
            if not _first_time(state.seen, reading.ts_ns):
                step.duplicates += 1
                continue
            self._dirty.add(reading.station_id)
            self._evaluate(plan, state, reading, now_ns, step)
        if fresh:
            self.health.observe(fresh, now_ns)
        return step

    def _evaluate(
        self, plan: _Plan, state: _StationState, reading: Reading, now_ns: int, step: Step
    ) -> None:
        station_id = reading.station_id
        ts_ns = reading.ts_ns
        late = now_ns - ts_ns > self._late_lag_ns
        rules = plan.rules
        events: list[AlertEvent] = []
        newest = state.last_seen_ns is None or ts_ns > state.last_seen_ns
        if newest:
            if state.faults.held is not None or station_id in self._pending_by_clock:
                # The station's clock moves to this reading's time: first whatever that
                # moment decides (as a tick would have, had one come in between).
                self._advance(plan, state, ts_ns, step)
            state.last_seen_ns = ts_ns
            # A clock ahead of the wall clock (a few minutes are accepted) runs no further
            # ahead of it here: on the wall clock its reading arrived at its own time.
            state.arrived_ns = max(now_ns, ts_ns)
            if station_id not in self._armed:
                self._arm(station_id)
        due = self._due_ns(station_id) if state.no_data else None
        if due is not None and due > now_ns:
            # Only a reading recent enough to end the silence clears it: an old one from a
            # backlog says the link is back, not that the station is current.
            state.no_data = False
            events.append(
                AlertEvent(
                    at_ns=ts_ns,
                    subject=station_id,
                    kind=EventKind.NO_DATA,
                    rule=nodata.RULE,
                    firing=False,
                    severity=Level.NORMAL,
                    late=late,
                    detail=f"{station_id}: reporting again",
                )
            )
        values = reading.values
        if newest and ("battery_v" in values or "battery_pct" in values):
            state.faults, found = faults.evaluate_battery(
                state.faults,
                station_id,
                ts_ns,
                values.get("battery_v"),
                values.get("battery_pct"),
                rule=rules.faults,
                late=late,
            )
            events.extend(found)
        value = values.get(LEVEL_METRIC)
        if value is not None:
            state.faults, found, trusted = faults.evaluate_level(
                state.faults, station_id, ts_ns, value, rule=rules.faults, late=late
            )
            events.extend(found)
            for at_ns, trusted_value in trusted:
                self._judge_level(plan, state, at_ns, trusted_value, late=late, events=events)
        if self.forecaster is not None and RAIN_METRIC in values:
            self._forecast(station_id, ts_ns, None, values[RAIN_METRIC], late, events)
        if state.faults.held is not None:
            self._holding.add(station_id)
        self._apply(events, step)

    def _advance(self, plan: _Plan, state: _StationState, clock_ns: int, step: Step) -> None:
        """What the station's own clock reaching ``clock_ns`` decides: a held jump released,
        then its pending incidents promoted. The same whether a tick or a reading moves it."""
        if state.faults.held is not None:
            self._release_held(plan, state, clock_ns, step)
        if plan.station.id in self._pending_by_clock:
            self._promote_pending(plan.station.id, clock_ns, step)

    def _release_held(self, plan: _Plan, state: _StationState, clock_ns: int, step: Step) -> None:
        """A suspect jump left without a next reading for two intervals of the station's own
        time counts (a gauge washed away by the flood it reports)."""
        station_id = plan.station.id
        wait_ns = 2 * plan.station.interval_s * NS_PER_S
        state.faults, released = faults.release_held(state.faults, clock_ns, wait_ns)
        if not released:
            return
        self._holding.discard(station_id)
        self._dirty.add(station_id)
        events: list[AlertEvent] = []
        arrived = state.arrived_ns
        for at_ns, value in released:
            # Late as it arrived (the held reading is the newest: it arrived at ``arrived``).
            late = arrived is not None and arrived - at_ns > self._late_lag_ns
            self._judge_level(plan, state, at_ns, value, late=late, events=events)
        self._apply(events, step)

    def _judge_level(
        self,
        plan: _Plan,
        state: _StationState,
        ts_ns: int,
        value: float,
        *,
        late: bool,
        events: list[AlertEvent],
    ) -> None:
        station_id = plan.station.id
        rules = plan.rules
        state.rate, rate_events = rate.evaluate(
            state.rate, station_id, ts_ns, value, rules.rate, late=late
        )
        own: list[AlertEvent] = list(rate_events)
        thresholds = plan.thresholds_at(ts_ns)
        if thresholds is not None and rules.level.enabled:
            trend = rate.trend_cm_h(state.rate, ts_ns)
            state.level, level_events = level.evaluate(
                state.level,
                station_id,
                ts_ns,
                value,
                thresholds=thresholds,
                rule=rules.level,
                late=late,
                trend_cm_h=trend,
            )
            own.extend(level_events)
        events.extend(own)
        if self.forecaster is not None:
            self._forecast(station_id, ts_ns, value, None, late, events)
        if not plan.downstream:
            return
        rising = any(_is_rise(rules, name) for name, _ in state.rate.firing)
        for event in own:
            if event.kind is EventKind.RATE and not (
                rules.upstream.on_rate and _is_rise(rules, event.rule.removeprefix("rate:"))
            ):
                continue
            state.warned, warnings = upstream.evaluate(
                state.warned,
                station_id,
                event,
                plan.downstream,
                source_level=state.level.level,
                rate_firing=rising and rules.upstream.on_rate,
            )
            events.extend(warnings)

    def _forecast(  # noqa: PLR0917 - one reading's parts
        self,
        station_id: str,
        ts_ns: int,
        level_cm: float | None,
        rain_mm: float | None,
        late: bool,
        events: list[AlertEvent],
    ) -> None:
        """Feed a trusted level (or rain) to the forecaster; judge the forecasts it re-issued."""
        assert self.forecaster is not None
        if not self.forecaster.watches(station_id):
            return
        issued = self.forecaster.observe(station_id, ts_ns, level_cm=level_cm, rain_mm=rain_mm)
        self._dirty.add(FORECAST_PREFIX + station_id)
        for forecast in issued:
            plan = self._plans.get(forecast.station)
            thresholds = plan.thresholds_at(forecast.issued_ns) if plan is not None else None
            if plan is None or thresholds is None:
                continue
            before = self._forecasts.get(forecast.station, forecasting.INITIAL)
            after, found = forecasting.evaluate(
                before,
                forecast,
                thresholds=thresholds,
                observed=self.level_of(forecast.station),
                rule=self._tidal_forecast_rule if plan.rules.level.tidal else self._forecast_rule,
                zone=self._zone(plan.station),
                late=late,
            )
            if after != before:
                self._forecasts[forecast.station] = after
                self._dirty.add(FORECAST_PREFIX + forecast.station)
            events.extend(found)

    def _zone(self, station: Station) -> Zone:
        zone = self._zones.get(station.id)
        if zone is None:
            zone = self._zones[station.id] = zone_for(station)
        return zone

    def _due_ns(self, station_id: str, *, watched: bool = False) -> int | None:
        """When (wall clock) a station becomes overdue (None: its no-data rule is off).

        On the station's own clock (:func:`station_now`) it is overdue ``missed_intervals``
        after its newest reading; on the wall clock that is as long after the reading arrived.

        ``watched``: when the tick looks at its silence, counted from the engine's start for
        a station whose newest reading arrived before it (a state restored after a restart).
        A function of the state alone that only moves later: a restart re-arms every station
        with it, and the journal's replay finds a station silent at the same tick as the live
        engine did.
        """
        plan = self._plans.get(station_id)
        if plan is None or not plan.rules.no_data.enabled:
            return None
        state = self._states.get(station_id)
        arrived = _arrival(state) if state is not None else None
        seen = self.started_ns if arrived is None else arrived
        if watched:
            seen = max(seen, self.started_ns)
        rule = plan.rules.no_data
        return seen + int(rule.missed_intervals * plan.station.interval_s * NS_PER_S)

    def _arm(self, station_id: str) -> None:
        due = self._due_ns(station_id, watched=True)
        if due is not None:
            heapq.heappush(self._due, (due, station_id))
            self._armed.add(station_id)

    def tick(self, now_ns: int) -> Step:
        """Judge what depends on time alone: silent stations and pending incidents.

        Cheap when nobody is overdue: each station waits in a heap by the moment it would be,
        and only the regencies of stations found overdue (or still silent) are judged.
        """
        step = Step()
        events: list[AlertEvent] = []
        due = self._due
        while due and due[0][0] <= now_ns:
            _, station_id = heapq.heappop(due)
            self._armed.discard(station_id)
            actual = self._due_ns(station_id, watched=True)
            if actual is None:
                continue
            if actual > now_ns:  # it reported since: wait again until its new moment
                heapq.heappush(due, (actual, station_id))
                self._armed.add(station_id)
            else:
                self._active_groups.add(self._plans[station_id].group)
        for group in sorted(self._active_groups):
            station_ids = self._groups.get(group, [])
            members = []
            for station_id in station_ids:
                plan = self._plans[station_id]
                if not plan.rules.no_data.enabled:
                    continue
                state = self._states.get(station_id)
                # The newest reading's time on the wall clock: the rule judges every member
                # of the group at one moment, and each station's clock is the wall clock
                # shifted by its own lag.
                arrived = _arrival(state) if state is not None else None
                members.append(
                    nodata.Member(
                        station_id,
                        self.started_ns if arrived is None else max(arrived, 0),
                        float(plan.station.interval_s),
                        bool(state and state.no_data),
                        plan.rules.no_data,
                    )
                )
            if not members:
                self._active_groups.discard(group)
                continue
            firing, group_firing, found = nodata.evaluate_group(
                group, members, group in self._groups_firing, now_ns
            )
            for member in members:
                now_firing = member.station_id in firing
                if now_firing != member.firing:
                    self._state(member.station_id).no_data = now_firing
                    self._dirty.add(member.station_id)
            if group_firing != (group in self._groups_firing):
                self._dirty.add(group)
                if group_firing:
                    self._groups_firing.add(group)
                else:
                    self._groups_firing.discard(group)
            events.extend(found)
            if not group_firing and all(
                nodata.overdue_since_ns(m) > now_ns and m.station_id not in firing for m in members
            ):
                self._active_groups.discard(group)
        self._apply(events, step)
        for station_id in sorted(self._holding):
            holding = self._plans.get(station_id)
            state = self._states.get(station_id)
            if holding is None or state is None or state.faults.held is None:
                self._holding.discard(station_id)
                continue
            self._release_held(holding, state, station_now(state, now_ns), step)
        for owner in sorted(self._pending_by_clock):
            state = self._states.get(owner)
            self._promote_pending(
                owner, now_ns if state is None else station_now(state, now_ns), step
            )
        return step

    def _state(self, station_id: str) -> _StationState:
        state = self._states.get(station_id)
        if state is None:
            state = self._states[station_id] = _StationState()
        return state

    # -- incidents ------------------------------------------------------------------------

    def _pending_ns(self, subject: str, kind: EventKind) -> int:
        plan = self._plans.get(subject)
        rules = plan.rules if plan is not None else self._rules.defaults
        return int(rules.pending_s.get(kind.value, 0.0) * NS_PER_S)

    def _apply(self, events: Iterable[AlertEvent], step: Step) -> None:
        for event in events:
            step.events.append(event)
            transition = self._transition(event)
            if transition is not None:
                step.transitions.append(transition)

    def _transition(self, event: AlertEvent) -> Transition | None:
        subject, rule = event.subject, event.rule
        incidents = self._incidents.get(subject)
        current = incidents.get(rule) if incidents else None
        before = current.state if current is not None else None
        if event.firing:
            if current is None:
                pending = self._pending_ns(subject, event.kind) > 0
                state = IncidentState.PENDING if pending else IncidentState.FIRING
                since = event.at_ns
            elif current.severity != event.severity:
                state, since = current.state, current.since_ns
            else:
                return None
            self._incidents.setdefault(subject, {})[rule] = _Incident(
                state, event.severity, since, event.kind
            )
            if state is IncidentState.PENDING:
                self._add_pending(subject, rule, event.kind)
        else:
            if current is None:
                return None
            state = IncidentState.RESOLVED
            self._drop_pending(subject, rule, current.kind)
            assert incidents is not None
            del incidents[rule]
            if not incidents:
                del self._incidents[subject]
        self._dirty.add(subject)
        return Transition(subject, rule, before, state, event)

    def _add_pending(self, subject: str, rule: str, kind: EventKind) -> None:
        if (subject, rule) in self._pending:
            return
        self._pending.add((subject, rule))
        self._pending_by_clock.setdefault(_clock_owner(subject, rule, kind), set()).add(
            (subject, rule)
        )

    def _drop_pending(self, subject: str, rule: str, kind: EventKind) -> None:
        if (subject, rule) not in self._pending:
            return
        self._pending.discard((subject, rule))
        owner = _clock_owner(subject, rule, kind)
        waiting = self._pending_by_clock[owner]
        waiting.discard((subject, rule))
        if not waiting:
            del self._pending_by_clock[owner]

    def _promote_pending(self, owner: str, clock_ns: int, step: Step) -> None:
        """Pending incidents on ``owner``'s clock that held their pending time by ``clock_ns``
        fire, dated by the moment their pending time ran out."""
        for subject, rule in sorted(self._pending_by_clock.get(owner, ())):
            incident = self._incidents[subject][rule]
            due_ns = incident.since_ns + self._pending_ns(subject, incident.kind)
            if clock_ns < due_ns:
                continue
            self._drop_pending(subject, rule, incident.kind)
            self._incidents[subject][rule] = _Incident(
                IncidentState.FIRING, incident.severity, incident.since_ns, incident.kind
            )
            self._dirty.add(subject)
            event = AlertEvent(
                at_ns=due_ns,
                subject=subject,
                kind=incident.kind,
                rule=rule,
                firing=True,
                severity=incident.severity,
                detail=f"{subject}: {rule} still holds after its pending time",
            )
            step.events.append(event)
            step.transitions.append(
                Transition(subject, rule, IncidentState.PENDING, IncidentState.FIRING, event)
            )

    def incidents(self) -> dict[tuple[str, str], tuple[IncidentState, Level]]:
        """Open incidents: ``(subject, rule)`` → (state, severity)."""
        return {
            (subject, rule): (incident.state, incident.severity)
            for subject, incidents in self._incidents.items()
            for rule, incident in incidents.items()
        }

    def level_of(self, station_id: str) -> Level:
        """A station's current level (NORMAL when never judged)."""
        state = self._states.get(station_id)
        return state.level.level if state is not None else Level.NORMAL

    def health_snapshot(self, now_ns: int) -> list[StationHealth]:
        """Device health of every station seen, from all of its readings."""
        return self.health.snapshot(now_ns)

    # -- persistence ----------------------------------------------------------------------

    def dirty_state(self) -> dict[str, bytes]:
        """Serialized state of every key changed since the last call (and forget the marks).

        Keys are subjects: a station id, or a group (``regency:<name>``, a listed group), plus
        :data:`ENGINE_KEY` (the engine's first start). The process saves them as a snapshot
        (``alerts.journal``) after the transitions of the steps since the last call; a key's
        newest value replaces its older one.
        """
        return self.capture_dirty().encode()

    def capture_dirty(self) -> StateCapture:
        """Every key changed since the last call as it is now, to encode later (forget the marks).

        A copy of references (the rules' states are immutable values), about 1.5 µs a key: the
        encoding (about 7 µs a key) can then be spread over the next cycles while the engine
        evaluates on, and still give the state of this instant.
        """
        dirty, self._dirty = self._dirty, set()
        forecasts = {key for key in dirty if key.startswith(FORECAST_PREFIX)}
        return StateCapture(
            [self._capture(key) for key in sorted(dirty - forecasts)],
            {key: self._encode_forecast(key) for key in sorted(forecasts)},
        )

    def state(self) -> dict[str, bytes]:
        """Every key's serialized state (a full snapshot)."""
        keys = set(self._states) | set(self._incidents) | self._groups_firing | {ENGINE_KEY}
        found = {key: _encode(*self._capture(key)) for key in sorted(keys)}
        if self.forecaster is not None:
            watched = {FORECAST_PREFIX + s for s in self.forecaster.models}
            watched |= {FORECAST_PREFIX + s for s in self._forecasts}
            for station in self.forecaster.models.values():
                watched |= {FORECAST_PREFIX + u for u, _ in station.upstream}
                watched |= {FORECAST_PREFIX + g for g in station.rain}
            found.update({key: self._encode_forecast(key) for key in sorted(watched)})
        return found

    def restore(self, states: Mapping[str, bytes]) -> None:
        """Load states written by :meth:`dirty_state` (after a restart, before any reading)."""
        for key, blob in states.items():
            self._decode(key, blob)
        self._pending, self._pending_by_clock = set(), {}
        for subject, incidents in self._incidents.items():
            for rule, incident in incidents.items():
                if incident.state is IncidentState.PENDING:
                    self._add_pending(subject, rule, incident.kind)
        self._compile()
        self._dirty.clear()

    def _capture(self, key: str) -> _Captured:
        if key == ENGINE_KEY:
            return (key, None, False, None, self.started_ns)
        state = self._states.get(key)
        if state is not None:
            state = _StationState(
                state.level,
                state.rate,
                state.faults,
                state.warned,
                state.last_seen_ns,
                state.no_data,
                state.seen.copy(),
                state.arrived_ns,
            )
        incidents = self._incidents.get(key)
        return (
            key,
            state,
            key in self._groups_firing,
            incidents.copy() if incidents else None,
            None,
        )

    def _encode_forecast(self, key: str) -> bytes:
        station = key.removeprefix(FORECAST_PREFIX)
        document: dict[str, object] = {"v": 1}
        rule_state = self._forecasts.get(station)
        if rule_state is not None:
            document["fs"] = [
                int(rule_state.warned),
                rule_state.active,
                rule_state.streak,
                int(rule_state.candidate),
                rule_state.quiet_since_ns,
            ]
        if self.forecaster is not None:
            issued, times, values = self.forecaster.dump(station)
            document["fh"] = [issued, _deltas(times), values]
        return orjson.dumps(document)

    def _decode_forecast(self, key: str, document: dict[str, Any]) -> None:
        station = key.removeprefix(FORECAST_PREFIX)
        if "fs" in document:
            warned, active, streak, candidate, quiet = document["fs"]
            self._forecasts[station] = forecasting.ForecastState(
                Level(warned), bool(active), int(streak), Level(candidate), quiet
            )
        if "fh" in document and self.forecaster is not None:
            issued, times, values = document["fh"]
            self.forecaster.load(station, issued, _undeltas(times), values)

    def _decode(self, key: str, blob: bytes) -> None:
        document = orjson.loads(blob)
        if key.startswith(FORECAST_PREFIX):
            self._decode_forecast(key, document)
            return
        if document.get("v") not in READABLE_VERSIONS:
            raise ValueError(f"state of {key!r} has version {document.get('v')!r}")
        if key == ENGINE_KEY:
            # Stations never seen keep counting from the first start, not from this one.
            self.started_ns = min(self.started_ns, int(document["started_ns"]))
            return
        if "lv" in document:
            lv, rt, ft = document["lv"], document["rt"], document["ft"]
            encoded_times, encoded_seen = rt[0], document["sn"]
            if isinstance(encoded_seen, int):
                times = _undeltas(encoded_times)
                seen = times[-encoded_seen:]
            elif isinstance(encoded_times, int):
                seen = _undeltas(encoded_seen)
                times = seen[-encoded_times:]
            else:
                times, seen = _undeltas(encoded_times), _undeltas(encoded_seen)
            self._states[key] = _StationState(
                level=level.LevelState(
                    Level(lv[0]),
                    lv[1],
                    lv[2],
                    Level(lv[3]),
                    tuple(zip(_undeltas(lv[4][0]), lv[4][1], strict=True)) if len(lv) > 4 else (),
                ),
                rate=rate.RateState(
                    tuple(times), tuple(rt[1]), tuple((str(n), int(t)) for n, t in rt[2])
                ),
                faults=faults.FaultState(
                    ft[0],
                    ft[1],
                    (int(ft[2][0]), float(ft[2][1])) if ft[2] else None,
                    ft[3],
                    ft[4],
                    ft[5],
                    ft[6],
                    ft[7],
                    ft[8],
                    ft[9],
                ),
                warned=Level(document["up"]),
                last_seen_ns=document["ls"],
                no_data=document["nd"],
                seen=seen,
                arrived_ns=None if "ar" not in document else document["ls"] + document["ar"],
            )
        else:
            self._states.pop(key, None)
        if document.get("gf"):
            self._groups_firing.add(key)
        else:
            self._groups_firing.discard(key)
        incidents = {
            rule: _Incident(IncidentState(i[0]), Level(i[1]), i[2], EventKind(i[3]))
            for rule, i in document.get("in", {}).items()
        }
        if incidents:
            self._incidents[key] = incidents
        else:
            self._incidents.pop(key, None)


_Captured = tuple[str, _StationState | None, bool, dict[str, _Incident] | None, int | None]
"""A key, its station state, whether its group fires, its incidents, the engine's start."""


class StateCapture:
    """The engine's changed keys as they were at one instant, encoded a part at a time."""

    def __init__(self, captured: list[_Captured], ready: dict[str, bytes] | None = None) -> None:
        self._captured = captured
        self._ready = ready or {}  # keys encoded at capture (the forecaster's, which change)
        self._next = 0

    def __len__(self) -> int:
        return len(self._captured) + len(self._ready)

    @property
    def done(self) -> bool:
        """Whether every key has been encoded."""
        return self._next >= len(self._captured) and not self._ready

    def encode(self, limit: int | None = None) -> dict[str, bytes]:
        """The next ``limit`` keys' states (None: all that remain), as :meth:`Engine.restore`
        reads them."""
        end = len(self._captured) if limit is None else min(len(self._captured), self._next + limit)
        encoded = {item[0]: _encode(*item) for item in self._captured[self._next : end]}
        self._next = end
        if self._ready:
            encoded.update(self._ready)
            self._ready = {}
        return encoded


def _encode(
    key: str,
    state: _StationState | None,
    group_firing: bool,
    incidents: dict[str, _Incident] | None,
    started_ns: int | None,
) -> bytes:
    """One key's state as :meth:`Engine.restore` reads it."""
    document: dict[str, object] = {"v": STATE_VERSION}
    if key == ENGINE_KEY:
        document["started_ns"] = started_ns
        return orjson.dumps(document)
    if state is not None:
        lv, rt, ft = state.level, state.rate, state.faults
        encoded_level: list[object] = [
            int(lv.level),
            lv.newest_ns,
            lv.below_since_ns,
            int(lv.below_peak),
        ]
        if lv.tide:
            encoded_level.append([_deltas([h for h, _ in lv.tide]), [m for _, m in lv.tide]])
        document["lv"] = encoded_level
        # The rate window's times and the remembered ones are mostly the same readings:
        # whichever is the other's tail is stored as its length alone.
        seen, times = state.seen, rt.times_ns
        encoded_seen: int | list[int]
        encoded_times: int | list[int]
        n_seen, n_times = len(seen), len(times)
        if n_seen and n_seen <= n_times and _tail_of(times, seen):
            encoded_seen, encoded_times = n_seen, _deltas(times)
        elif n_times and n_times < n_seen and _tail_of(seen, times):
            encoded_seen, encoded_times = _deltas(seen), n_times
        else:
            encoded_seen, encoded_times = _deltas(seen), _deltas(times)
        document["rt"] = [encoded_times, list(rt.values), [list(f) for f in rt.firing]]
        document["ft"] = [
            ft.newest_ns,
            ft.last_value,
            list(ft.held) if ft.held else None,
            ft.flat_value,
            ft.flat_since_ns,
            ft.flat_count,
            ft.flatline,
            ft.spike_ns,
            ft.battery_low,
            ft.battery_peak_v,
        ]
        document["up"] = int(state.warned)
        document["ls"] = state.last_seen_ns
        if state.arrived_ns is not None and state.last_seen_ns is not None:
            document["ar"] = state.arrived_ns - state.last_seen_ns  # its lag: a few digits live
        document["nd"] = state.no_data
        document["sn"] = encoded_seen
    if group_firing:
        document["gf"] = True
    if incidents:
        document["in"] = {
            rule: [i.state.value, int(i.severity), i.since_ns, i.kind.value]
            for rule, i in incidents.items()
        }
    return orjson.dumps(document)


def station_now(state: _StationState, now_ns: int) -> int:
    """A station's own clock at wall time ``now_ns``: its newest reading's time advanced by the
    wall time since that reading arrived (``now_ns`` for a station never seen).

    For a live station that is the wall clock. A back-dated stream whose readings come faster
    than their own time passes (a replay, the demo at 3600x, a backlog draining) is always at
    or behind its next reading: a tick never decides ahead of it. A stream that stops still
    has its clock run on, so a gauge that went silent is judged silent.
    """
    if state.last_seen_ns is None or state.arrived_ns is None:
        return now_ns
    return state.last_seen_ns + max(0, now_ns - state.arrived_ns)


def _arrival(state: _StationState) -> int | None:
    """When the station's newest reading arrived (None: never seen)."""
    if state.last_seen_ns is None:
        return None
    return state.last_seen_ns if state.arrived_ns is None else state.arrived_ns


def _clock_owner(subject: str, rule: str, kind: EventKind) -> str:
    """The station whose clock a pending incident waits on: the one whose readings decide it
    (an upstream warning's source; otherwise the subject itself). A silence is dated by the
    wall clock it was judged at: :data:`ENGINE_KEY`, never a station, stands for that."""
    if kind is EventKind.NO_DATA:
        return ENGINE_KEY
    if kind is EventKind.UPSTREAM:
        return rule.removeprefix("upstream:")
    return subject


def _reading_time(reading: Reading) -> int:
    return reading.ts_ns


def _first_time(seen: list[int], ts_ns: int) -> bool:
    """Record ``ts_ns`` among a station's recent reading times; False if seen (or too old)."""
    position = bisect_left(seen, ts_ns)
    if position < len(seen) and seen[position] == ts_ns:
        return False
    if position == 0 and len(seen) >= SEEN_PER_STATION:
        return False
    insort(seen, ts_ns)
    if len(seen) > SEEN_PER_STATION:
        del seen[0]
    return True


def _tail_of(longer: Sequence[int], shorter: Sequence[int]) -> bool:
    """Whether ``shorter`` (not empty) is the end of ``longer``."""
    start = len(longer) - len(shorter)
    return longer[start] == shorter[0] and list(longer[start:]) == list(shorter)


def _deltas(ascending: Sequence[int]) -> list[int]:
    """Ascending times as the first and the gaps after it (a third of the digits)."""
    if not ascending:
        return []
    return [ascending[0], *map(sub, ascending[1:], ascending[:-1])]


def _undeltas(encoded: Sequence[int]) -> list[int]:
    return list(accumulate(encoded))


def _is_rise(rules: RuleSet, name: str) -> bool:
    return any(rule.name == name and rule.rise_cm is not None for rule in rules.rate)
