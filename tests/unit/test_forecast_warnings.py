"""Forecast warnings: the rule alone, and the engine with a fitted model on a synthetic river."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from alerts import journal
from alerts.engine import Engine, Scope
from alerts.forecasting import fit_models
from alerts.incidents.records import event_from_json, event_to_json
from alerts.journal import JournalBuffer
from alerts.model import AlertEvent, EventKind
from alerts.notify.localtime import WIB, WITA
from alerts.rules import forecast as rule
from alerts.rules.config import parse_rules
from devices.levels import Level, Thresholds
from devices.readings import Reading
from forecast.live import LiveForecaster
from forecast.models import ARX, PERSISTENCE, Forecast, ModelSpec
from tests import alerting
from tests.forecasting import HISTORY_CRESTS, RIVER, waves

H = alerting.HOUR_NS
STEP = 15 * alerting.MINUTE_NS
THRESHOLDS = Thresholds(waspada_cm=150, siaga_cm=200, awas_cm=250)
RULE = rule.ForecastRule()


def _forecast(at_h: float, now: float, values: list[float], spread: float = 5.0) -> Forecast:
    return Forecast(
        "hilir",
        alerting.T0 + int(at_h * H),
        now,
        tuple(values),
        tuple(v - spread for v in values),
        tuple(v + spread for v in values),
        ARX,
    )


def _judge(
    forecasts: list[Forecast], observed: list[Level] | None = None
) -> tuple[rule.ForecastState, list[AlertEvent]]:
    state, events = rule.INITIAL, []
    for i, forecast in enumerate(forecasts):
        seen = observed[i] if observed else Level.NORMAL
        state, found = rule.evaluate(
            state, forecast, thresholds=THRESHOLDS, observed=seen, rule=RULE, zone=WIB
        )
        events.extend(found)
    return state, events


def test_a_crossing_is_interpolated_between_hours() -> None:
    at = alerting.T0
    assert rule.crossing_ns(at, 180.0, (190.0, 210.0), 200.0, True) == at + int(1.5 * H)
    assert rule.crossing_ns(at, 180.0, (190.0, 199.0), 200.0, True) is None
    assert rule.crossing_ns(at, 180.0, (200.0,), 200.0, False) is None


def test_a_confirmed_forecast_warns_once_with_expected_time_and_interval() -> None:
    rising = [180.0, 190.0, 210.0, 230.0]
    _, events = _judge([_forecast(0, 170, rising), _forecast(0.25, 172, rising)])
    assert len(events) == 1
    event = events[0]
    assert (event.kind, event.rule, event.severity, event.firing) == (
        EventKind.FORECAST,
        "forecast",
        Level.SIAGA,
        True,
    )
    # T0 is 07:00 WIB; issued 07:15, crossing at 2.5 h: 09:45; the band 09:30-10:00.
    assert event.expected_at_ns == alerting.T0 + int(2.75 * H)
    assert event.detail == (
        "diperkirakan mencapai SIAGA sekitar pukul 09.45 WIB (80 %: 09.30–10.00)"  # noqa: RUF001
    )
    # The facts the messages are rendered from, and they survive the incident store's JSON.
    assert event.expected_range_ns == (alerting.T0 + int(2.5 * H), alerting.T0 + 3 * H)
    assert (event.range_open, event.coverage_pct) == (False, 80)
    assert event_from_json(orjson.loads(orjson.dumps(event_to_json(event)))) == event


def test_a_band_whose_low_bound_never_crosses_is_open_ended() -> None:
    rising = [180.0, 190.0, 210.0, 230.0]
    _, events = _judge(
        [_forecast(0, 170, rising, spread=40.0), _forecast(0.25, 172, rising, spread=40.0)]
    )
    assert len(events) == 1
    event = events[0]
    assert event.range_open
    assert event.expected_range_ns is not None
    assert event.expected_range_ns[1] == alerting.T0 + int(4.25 * H)  # the horizon's end
    assert event.detail.endswith("–sesudah 11.15)")  # noqa: RUF001 - an en dash


def test_one_forecast_alone_never_warns() -> None:
    _, events = _judge([_forecast(0, 170, [180.0, 210.0])])
    assert events == []


def test_a_small_rise_near_a_threshold_is_not_a_warning() -> None:
    wiggle = [_forecast(i * 0.25, 196, [199.0, 201.0, 202.0]) for i in range(20)]
    assert _judge(wiggle)[1] == []


def test_persistence_never_warns() -> None:
    flat = Forecast(
        "hilir", alerting.T0, 199.0, (199.0,) * 3, (190.0,) * 3, (260.0,) * 3, PERSISTENCE
    )
    assert _judge([flat, flat, flat])[1] == []


def test_a_forecast_hovering_at_the_line_does_not_flap() -> None:
    forecasts = []
    for i in range(40):
        top = 205.0 if i // 2 % 2 == 0 else 193.0  # above twice, below twice, ...
        forecasts.append(_forecast(i * 0.25, 180, [190.0, top]))
    state, events = _judge(forecasts)
    assert [(e.firing, e.severity) for e in events] == [(True, Level.SIAGA)]
    assert state.warned == Level.SIAGA


def test_the_episode_ends_after_the_hold_below_the_band() -> None:
    up = [_forecast(0, 170, [185.0, 215.0]), _forecast(0.25, 172, [186.0, 216.0])]
    calm = [_forecast(0.5 + i * 0.25, 170, [175.0, 180.0]) for i in range(6)]
    state, events = _judge(up + calm)
    assert [(e.firing, e.severity) for e in events] == [(True, Level.SIAGA), (False, Level.SIAGA)]
    assert events[1].at_ns - calm[0].issued_ns == H
    assert state.warned == Level.NORMAL


def test_an_observed_crossing_supersedes_the_forecast() -> None:
    up = [_forecast(0, 170, [185.0, 215.0]), _forecast(0.25, 172, [186.0, 216.0])]
    there = [_forecast(0.5, 201, [205.0, 215.0]), _forecast(0.75, 203, [206.0, 216.0])]
    state, events = _judge(up + there, [Level.WASPADA, Level.WASPADA, Level.SIAGA, Level.SIAGA])
    assert [(e.firing, e.severity) for e in events] == [(True, Level.SIAGA), (False, Level.SIAGA)]
    assert "superseded" in events[1].detail
    assert (state.warned, state.active) == (Level.SIAGA, False)


def test_a_higher_level_is_warned_in_the_same_episode() -> None:
    siaga = [_forecast(0, 170, [185.0, 215.0]), _forecast(0.25, 172, [186.0, 216.0])]
    awas = [_forecast(0.5, 190, [215.0, 260.0]), _forecast(0.75, 195, [220.0, 265.0])]
    _, events = _judge(siaga + awas)
    assert [(e.firing, e.severity, e.previous) for e in events] == [
        (True, Level.SIAGA, Level.NORMAL),
        (True, Level.AWAS, Level.SIAGA),
    ]


def test_the_time_is_given_in_the_station_zone() -> None:
    rising = [180.0, 190.0, 210.0, 230.0]
    state, found = rule.INITIAL, []
    for forecast in (_forecast(0, 170, rising), _forecast(0.25, 172, rising)):
        state, events = rule.evaluate(
            state, forecast, thresholds=THRESHOLDS, observed=Level.NORMAL, rule=RULE, zone=WITA
        )
        found += events
    assert "pukul 10.45 WITA" in found[0].detail


# -- the engine, with a model fitted on a synthetic river ------------------------------------------


def _models() -> LiveForecaster:
    history = waves(40 * 24, HISTORY_CRESTS, seed=1)
    models = fit_models(history, RIVER, ModelSpec(horizon_h=6))
    assert models["hilir"].method == ARX
    return LiveForecaster(models)


def _run(engine: Engine, readings: list[Reading]) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    for reading in readings:
        events.extend(engine.process([reading], reading.ts_ns).events)
    return events


@pytest.fixture(scope="module")
def flood() -> list[Reading]:
    start = 45 * 24
    return [
        r
        for r in waves(start + 48, [(start + 20, 200)], seed=2)
        if r.ts_ns >= alerting.T0 + (start + 3) * H
    ]


def test_siaga_is_forecast_before_it_is_observed(flood: list[Reading]) -> None:
    engine = Engine(RIVER, started_ns=flood[0].ts_ns, forecaster=_models())
    events = _run(engine, flood)
    warned = [e for e in events if e.kind is EventKind.FORECAST and e.subject == "hilir"]
    observed = [e for e in events if e.kind is EventKind.LEVEL and e.subject == "hilir"]
    siaga_warning = next(e for e in warned if e.firing and e.severity == Level.SIAGA)
    siaga_seen = next(e for e in observed if e.severity >= Level.SIAGA)
    lead_h = (siaga_seen.at_ns - siaga_warning.at_ns) / H
    assert siaga_warning.expected_at_ns is not None
    error_h = (siaga_warning.expected_at_ns - siaga_seen.at_ns) / H
    assert lead_h >= 1.0
    assert abs(error_h) <= 1.5
    # One warning per level per episode, each superseded by the observation.
    firing = [(e.severity, e.firing) for e in warned]
    assert firing.count((Level.SIAGA, True)) == 1
    assert all(count <= 1 for count in (firing.count((lv, True)) for lv in Level))
    assert any(not e.firing and "superseded" in e.detail for e in warned)


def test_no_forecast_warning_in_a_dry_fortnight() -> None:
    quiet = waves(14 * 24, [], seed=3)
    engine = Engine(RIVER, started_ns=quiet[0].ts_ns, forecaster=_models())
    events = _run(engine, quiet)
    assert [e for e in events if e.kind is EventKind.FORECAST] == []


def test_a_killed_engine_restores_its_forecasts_without_warning_twice(
    flood: list[Reading],
) -> None:
    reference = Engine(RIVER, started_ns=flood[0].ts_ns, forecaster=_models())
    expected = [e.id for e in _run(reference, flood) if e.kind is EventKind.FORECAST]
    assert expected
    for cut in range(40, len(flood), 23):
        engine = Engine(RIVER, started_ns=flood[0].ts_ns, forecaster=_models())
        before = _run(engine, flood[:cut])
        saved = engine.state()
        revived = Engine(RIVER, started_ns=flood[0].ts_ns, forecaster=_models())
        revived.restore(saved)
        after = _run(revived, flood[cut:])
        got = [e.id for e in before + after if e.kind is EventKind.FORECAST]
        assert got == expected, cut


def test_dirty_state_carries_the_forecasts(flood: list[Reading]) -> None:
    engine = Engine(RIVER, started_ns=flood[0].ts_ns, forecaster=_models())
    _run(engine, flood[:200])
    dirty = engine.dirty_state()
    assert {"forecast:hilir", "forecast:hulu"} <= set(dirty)
    assert engine.dirty_state() == {}
    revived = Engine(RIVER, started_ns=flood[0].ts_ns, forecaster=_models())
    revived.restore(dirty)
    assert revived.forecaster is not None
    assert revived.forecaster.dump("hilir") == engine.forecaster.dump("hilir")  # type: ignore[union-attr]


def test_out_of_scope_stations_are_not_warned(flood: list[Reading]) -> None:
    engine = Engine(
        RIVER,
        scope=Scope(stations=frozenset({"hulu"})),
        started_ns=flood[0].ts_ns,
        forecaster=_models(),
    )
    events = _run(engine, flood)
    assert {e.subject for e in events if e.kind is EventKind.FORECAST} <= {"hulu"}


class _Scripted:
    """A forecaster that issues given forecasts of ``hilir``, one per reading of it."""

    def __init__(self, forecasts: list[Forecast]) -> None:
        self._forecasts = iter(forecasts)
        self.models: dict[str, object] = {}

    def watches(self, station: str) -> bool:
        return station == "hilir"

    def observe(self, station: str, ts_ns: int, **_: float | None) -> list[Forecast]:
        found = next(self._forecasts, None)
        return [] if found is None else [replace(found, issued_ns=ts_ns)]

    def dump(self, station: str) -> tuple[int | None, list[int], list[float]]:
        return None, [], []


def test_on_a_tidal_reach_the_episode_holds_a_tidal_day() -> None:
    rules = parse_rules(
        "version: 1\noverrides:\n  - {match: {station: hilir}, level: {tidal: true}}\n",
        "<rules>",
    )
    rising = [_forecast(0, 170, [185.0, 215.0])] * 2
    calm = [_forecast(0, 170, [172.0, 175.0])] * 20
    readings = [alerting.level("hilir", 15 * i, 170.0) for i in range(22)]
    ended = {}
    for name, chosen in (("river", None), ("tidal", rules)):
        engine = Engine(RIVER, chosen, started_ns=alerting.T0, forecaster=_Scripted(rising + calm))  # type: ignore[arg-type]
        events = [e for e in _run(engine, readings) if e.kind is EventKind.FORECAST]
        assert [(e.severity, e.firing) for e in events][:1] == [(Level.SIAGA, True)]
        ended[name] = [e for e in events if not e.firing]
    assert len(ended["river"]) == 1  # an hour after the forecast calmed
    assert ended["tidal"] == []  # a tidal day is not over after five hours


def test_a_snapshot_and_the_journal_give_back_the_forecasts_without_repeats(
    flood: list[Reading],
) -> None:
    """As ``siaga alerts run`` keeps it: a journal entry every 5 readings, a snapshot every 4
    entries; killed at several points, restored and replayed, nothing lost or issued twice."""
    models = _models().models
    reference = Engine(RIVER, started_ns=flood[0].ts_ns, forecaster=LiveForecaster(models))
    expected = [
        (t.event.id, t.state.value)
        for r in flood
        for t in reference.process([r], r.ts_ns).transitions
        if t.event.kind is EventKind.FORECAST
    ]
    assert expected
    for crash_at in (60, 96, 104, 112, 124, 133, 201):
        live = Engine(RIVER, started_ns=flood[0].ts_ns, forecaster=LiveForecaster(models))
        buffer, store = JournalBuffer(), alerting.HeldJournal()
        done: list[tuple[str, str]] = []
        by_entry: dict[int, list[tuple[str, str]]] = {}
        pending: list[tuple[str, str]] = []
        for index, reading in enumerate(flood[:crash_at], start=1):
            step = live.process([reading], reading.ts_ns)
            pending += [(t.event.id, t.state.value) for t in step.transitions]
            buffer.record_process([reading], reading.ts_ns)
            if index % 5:
                continue
            number = store.checkpoint(buffer)
            by_entry[number], pending = pending, []
            done += by_entry[number]
            if number % 4 == 1:
                store.snapshot(live)
        saved = journal.split(store.held)
        revived = Engine(RIVER, started_ns=flood[0].ts_ns, forecaster=LiveForecaster(models))
        revived.restore(saved.states)
        replayed = journal.replay(revived, (body for _, body in saved.entries))
        assert [(t.event.id, t.state.value) for t in replayed.step.transitions] == [
            k for n, _ in saved.entries for k in by_entry[n]
        ]
        # The rest of the flood, redelivered from the last checkpoint on.
        resumed = store.number * 5
        for reading in flood[resumed:]:
            done += [
                (t.event.id, t.state.value)
                for t in revived.process([reading], reading.ts_ns).transitions
            ]
        got = [k for k in done if k in set(expected)]
        assert got == expected, crash_at
