"""Time in the engine is the readings' time: ticks decide nothing a back-dated stream's next
reading would decide otherwise (the demo, a replay, a store-and-forward backlog).

The shipped flood (way-tulang-bawang-flood, with its spikes, dropout, backlog and duplicates) is
replayed as ``siaga up`` plays its demo: the simulator publishes each message when the simulated
clock, running ``speed`` times faster than the wall clock, reaches its time, and the run ends at
"now" (:func:`simulators.runner.default_start`); the engine evaluates each reading as it arrives
and ticks every ``alerts.tick_interval_s`` of the wall clock, as :class:`AlertLoop` does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from itertools import pairwise

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.engine import Engine, Scope
from alerts.loop import LoopPolicy
from alerts.model import AlertEvent, EventKind
from alerts.rules.config import RulesConfig, load_rules, parse_rules
from devices.readings import Reading
from devices.registry import Registry, load_registry
from devices.topics import TopicScheme
from ingest.validation import Limits, Validator
from simulators.plan import Plan, build_plan
from simulators.runner import default_start
from simulators.scenario import FaultEntry, load_scenario
from tests.conftest import REPO_ROOT

NS_PER_S = 1_000_000_000
SCENARIO = "way-tulang-bawang-flood"
DEMO_SPEED = 3600.0  # ops.up's demo_speed
TICK_S = LoopPolicy().tick_interval_s
WALL_END_NS = 1_790_000_000 * NS_PER_S  # the moment a demo run ends (its readings reach it)
FROM_A_SPIKE = (EventKind.LEVEL, EventKind.RATE, EventKind.UPSTREAM)


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


@cache
def rules() -> RulesConfig:
    return load_rules(REPO_ROOT / "config/rules.yaml")


@cache
def demo(
    seed: int | None = None, speed: float = DEMO_SPEED, *, more_faults: bool = False
) -> tuple[Plan, tuple[Arrival, ...]]:
    """A demo run's plan and its readings as they reach the engine (seed None: the scenario's;
    ``more_faults``: with :data:`MORE_FAULTS` too)."""
    scenario = load_scenario(SCENARIO, REPO_ROOT / "config/scenarios")
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    if more_faults:
        extra = [FaultEntry.model_validate(fault) for fault in MORE_FAULTS]
        scenario = scenario.model_copy(update={"faults": [*scenario.faults, *extra]})
    start_ns = default_start(scenario.duration_s, speed, WALL_END_NS)
    plan = build_plan(scenario, registry(), start_ns)
    began_ns = WALL_END_NS - round(scenario.duration_s / speed * NS_PER_S)
    validator = Validator(registry(), TopicScheme(), Limits())
    arrivals: list[Arrival] = []
    for message in plan.messages:
        # Published when the simulated clock reaches the message; a few ms to the engine.
        now_ns = began_ns + round(message.at_s / speed * NS_PER_S) + 3_000_000
        outcome = validator.validate(message.message.topic, message.message.payload, now_ns)
        if outcome.readings:
            arrivals.append((now_ns, tuple(outcome.readings)))
    return plan, tuple(arrivals)


MORE_FAULTS = [
    # Spikes on the main river at Awas, a stuck sensor at Banjar Agung, a silence at Menggala.
    {
        "kind": "spike",
        "station": "tb-menggala",
        "at": "7d",
        "duration": "1d",
        "count": 3,
        "magnitude": 120,
    },
    {
        "kind": "spike",
        "station": "wk-blambangan-umpu",
        "at": "2d12h",
        "duration": "12h",
        "count": 2,
        "magnitude": 90,
    },
    {"kind": "flatline", "station": "tb-banjar-agung", "at": "9d", "duration": "14h"},
    {"kind": "dropout", "station": "tb-menggala", "at": "10d", "duration": "5h"},
]

Arrival = tuple[int, tuple[Reading, ...]]
"""A delivery: the wall time the engine evaluates it, and its readings."""


def engine_for(plan: Plan, rules_in_force: RulesConfig, started_ns: int) -> Engine:
    return Engine(
        registry(),
        rules_in_force,
        scope=Scope(stations=frozenset(plan.senders)),
        started_ns=started_ns,
    )


def evaluate(
    plan: Plan,
    arrivals: Sequence[Arrival],
    ticks_ns: Sequence[int],
    rules_in_force: RulesConfig | None = None,
) -> list[AlertEvent]:
    """Every event of the deliveries with the ticks (wall times, ascending) in between."""
    engine = engine_for(plan, rules_in_force or rules(), arrivals[0][0])
    events: list[AlertEvent] = []
    pending = iter(ticks_ns)
    tick = next(pending, None)
    for now_ns, readings in arrivals:
        while tick is not None and tick <= now_ns:
            events += engine.tick(tick).events
            tick = next(pending, None)
        events += engine.process(readings, now_ns).events
    return events


def live_ticks(arrivals: Sequence[Arrival], phase_s: float) -> list[int]:
    """The loop's ticks over a run: every tick interval of the wall clock from ``phase_s``
    after the first delivery, until the last one."""
    first, last = arrivals[0][0], arrivals[-1][0]
    step = round(TICK_S * NS_PER_S)
    return list(range(first + round(phase_s * NS_PER_S), last + 1, step))


def per_subject(events: Sequence[AlertEvent]) -> dict[str, list[AlertEvent]]:
    """Events by subject, each subject's in order (ticks may order subjects differently)."""
    grouped: dict[str, list[AlertEvent]] = defaultdict(list)
    for event in events:
        grouped[event.subject].append(event)
    return dict(grouped)


def spiked_times(plan: Plan) -> dict[str, set[int]]:
    """Per station, the times of the readings a spike fault moved (far from the true level)."""
    smallest = min(f.magnitude or 150.0 for f in plan.scenario.fault_specs() if f.kind == "spike")
    found: dict[str, set[int]] = defaultdict(set)
    for station_id, samples in plan.samples.items():
        if samples.truth_cm is None or "water_level_cm" not in samples.values:
            continue
        off = abs(samples.values["water_level_cm"] - samples.truth_cm)
        for ts_ms, moved in zip(samples.ts_ms, off >= smallest / 2, strict=True):
            if moved:
                found[station_id].add(int(ts_ms) * 1_000_000)
    return dict(found)


def from_a_spike(plan: Plan, events: Sequence[AlertEvent]) -> list[AlertEvent]:
    """Level, rate and upstream events caused by a spiked reading (dated by its time)."""
    spikes = spiked_times(plan)
    return [
        e
        for e in events
        if e.kind in FROM_A_SPIKE
        and e.at_ns
        in spikes.get((e.source or "") if e.kind is EventKind.UPSTREAM else e.subject, ())
    ]


# -- the Dente Teladas false alarm ------------------------------------------------------------


def test_a_tick_between_the_dente_teladas_spike_and_its_next_reading_changes_nothing() -> None:
    plan, arrivals = demo()
    spikes = spiked_times(plan)
    assert set(spikes) == {"tb-dente-teladas"}
    assert len(spikes["tb-dente-teladas"]) == 2
    alone = evaluate(plan, arrivals, [])
    flagged = {e.at_ns for e in alone if e.rule == "sensor_fault:spike" and e.firing}
    assert flagged == spikes["tb-dente-teladas"]
    for spike_ns in sorted(spikes["tb-dente-teladas"]):
        # The delivery that carried the spike, and the next one of the same station.
        at = next(i for i, (_, rs) in enumerate(arrivals) if any(r.ts_ns == spike_ns for r in rs))
        following = next(
            now
            for now, rs in arrivals[at + 1 :]
            if any(r.station_id == "tb-dente-teladas" for r in rs)
        )
        between = (arrivals[at][0] + following) // 2
        ticked = evaluate(plan, arrivals, [between])
        assert from_a_spike(plan, ticked) == []
        assert per_subject(ticked) == per_subject(alone)


# -- the demo run ten times -------------------------------------------------------------------


@pytest.mark.parametrize("run", range(10))
def test_the_demo_at_3600x_with_the_loop_s_ticks_gives_no_event_from_a_spike(run: int) -> None:
    # Ten runs: the scenario's noise and spike placement from ten seeds, and the loop's ticks
    # at ten phases against the simulator's publishing (a run starts whenever it starts).
    plan, arrivals = demo(seed=None if run == 0 else 20250310 + run)
    phase_s = TICK_S * run / 10 + 0.123
    ticked = evaluate(plan, arrivals, live_ticks(arrivals, phase_s))
    assert from_a_spike(plan, ticked) == []
    spikes = {(s, t) for s, times in spiked_times(plan).items() for t in times}
    flagged = {(e.subject, e.at_ns) for e in ticked if e.rule == "sensor_fault:spike" and e.firing}
    assert flagged == spikes
    # And nothing else differs from the readings alone either.
    assert per_subject(ticked) == per_subject(evaluate(plan, arrivals, []))


# -- ticks anywhere ---------------------------------------------------------------------------


@cache
def pending_rules() -> RulesConfig:
    """The shipped rules, with level, rate and upstream incidents pending before they fire."""
    document = yaml.safe_load((REPO_ROOT / "config/rules.yaml").read_text(encoding="utf-8"))
    document["defaults"]["pending_s"] = {"level": 1800, "rate": 900, "upstream": 3600}
    return parse_rules(yaml.safe_dump(document))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(
    speed=st.sampled_from([60.0, 600.0, DEMO_SPEED, 36_000.0]),
    ticks=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.floats(0.0, 1.0, exclude_max=True)),
        min_size=1,
        max_size=400,
    ),
    every_gap=st.booleans(),
    pending=st.booleans(),
)
def test_ticks_anywhere_between_readings_decide_what_the_readings_alone_decide(
    speed: float,
    ticks: list[tuple[float, float]],
    every_gap: bool,
    pending: bool,
) -> None:
    # Each tick lands in a gap between two deliveries (which gap, and where in it, drawn); with
    # every_gap, one lands in every gap of the run as well. The flood carries the demo's faults
    # (a spike pair at Dente Teladas, a dropout, a backlog, duplicates) and MORE_FAULTS
    # (spikes on the main river, a flatline, another dropout). Whatever the placement, each
    # subject's events are those of the readings alone: no level, rate or upstream event
    # from a spike, and no silence of a stream that keeps coming.
    plan, arrivals = demo(speed=speed, more_faults=True)
    in_force = pending_rules() if pending else rules()
    gaps = [(a[0], b[0]) for a, b in pairwise(arrivals) if b[0] > a[0]]
    chosen = set()
    for which, where in ticks:
        begin, end = gaps[int(which * len(gaps))]
        chosen.add(begin + int((end - begin) * where))
    if every_gap:
        fraction = ticks[0][1]
        chosen |= {begin + int((end - begin) * fraction) for begin, end in gaps}
    ticked = evaluate(plan, arrivals, sorted(chosen), in_force)
    alone = evaluate(plan, arrivals, [], in_force)
    assert from_a_spike(plan, ticked) == []
    assert per_subject(ticked) == per_subject(alone)
