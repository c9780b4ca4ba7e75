"""The alert benchmark: how many readings per second the engine evaluates on one core.

A synthetic registry of 10,000 river gauges (regencies of 50, rivers of 5 linked downstream, a
threshold set each) and a stream of readings that wander and flood through the thresholds are
built first. Then, in the same run and on the same readings:

1. a baseline: a bare loop that only looks each reading's thresholds up and levels it;
2. the engine: :meth:`Engine.process` in deliveries of ``batch`` readings, plus one
   :meth:`Engine.tick` per delivery (the no-data rule over every station), plus the
   serialization of the changed states (:meth:`Engine.dirty_state`) the process persists.

Each contender runs ``trials`` times on a fresh engine; the best run counts. One Python process,
one thread: the figure is per core. Run it as ``siaga bench alerts``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from alerts.engine import Engine
from alerts.rules.config import RulesConfig
from devices.levels import Level, Thresholds
from devices.readings import Reading
from devices.stations import Link, MetricSpec, StaticRegistry, Station

NS_PER_S = 1_000_000_000
TARGET_PER_S = 20_000.0
_METRICS = {
    "water_level_cm": MetricSpec(unit="cm", min=0, max=2000),
    "battery_v": MetricSpec(unit="V", min=0, max=15),
}


def synthetic_registry(count: int, seed: int = 7) -> StaticRegistry:
    """``count`` gauges: regencies of 50, rivers of 5 stations linked downstream."""
    rng = random.Random(seed)
    stations = []
    for index in range(count):
        river = index // 5
        downstream = (
            [Link(station=f"g{index + 1:06d}", travel_min=rng.uniform(60, 600))]
            if index % 5 != 4 and index + 1 < count
            else []
        )
        base = rng.uniform(100, 600)
        stations.append(
            Station(
                id=f"g{index:06d}",
                name=f"Gauge {index}",
                regency=f"Regency {index // 50}",
                river=f"River {river}",
                latitude=-6.0,
                longitude=106.0,
                metrics=_METRICS,
                interval_s=600,
                downstream=downstream,
                thresholds=[
                    Thresholds(waspada_cm=base + 50, siaga_cm=base + 100, awas_cm=base + 150)
                ],
            )
        )
    return StaticRegistry(stations)


def synthetic_readings(
    registry: StaticRegistry, count: int, start_ns: int, seed: int = 11
) -> list[Reading]:
    """Readings round-robin over the stations every 10 minutes of event time: each level
    wanders, and one station in ten floods through its thresholds and back."""
    rng = random.Random(seed)
    stations = registry.stations()
    levels = [s.thresholds[0].waspada_cm - 30 for s in stations]
    flooding = [index % 10 == 0 for index in range(len(stations))]
    readings = []
    for number in range(count):
        index = number % len(stations)
        round_number = number // len(stations)
        drift = rng.gauss(0, 1.5)
        if flooding[index]:
            drift += 12 if (round_number // 20) % 2 == 0 else -12
        levels[index] = max(0.0, levels[index] + drift)
        ts = start_ns + round_number * 600 * NS_PER_S + index * 1000
        values = {"water_level_cm": round(levels[index], 1)}
        if number % 7 == 0:
            values["battery_v"] = 12.6
        readings.append(Reading(stations[index].id, ts, values, seq=round_number))
    return readings


def baseline(registry: StaticRegistry, readings: Sequence[Reading]) -> tuple[float, float]:
    """Wall and CPU seconds for a bare loop: each reading's thresholds looked up, levelled."""
    thresholds = {s.id: s.thresholds[0] for s in registry.stations()}
    started = time.perf_counter()
    cpu_started = time.process_time()
    counts = [0, 0, 0, 0]
    for reading in readings:
        value = reading.values.get("water_level_cm")
        if value is not None:
            counts[thresholds[reading.station_id].level_of(value)] += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    assert sum(counts) == len(readings)
    return elapsed, cpu


@dataclass(frozen=True, slots=True)
class EngineRun:
    """One run of the engine over the readings."""

    seconds: float
    cpu_seconds: float
    events: int
    transitions: int
    state_bytes: int
    escalations: int


def engine_run(
    registry: StaticRegistry, readings: Sequence[Reading], batch: int, start_ns: int
) -> EngineRun:
    """Seconds for the engine over the readings in deliveries of ``batch``."""
    engine = Engine(registry, RulesConfig(), started_ns=start_ns)
    events = transitions = state_bytes = escalations = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    for offset in range(0, len(readings), batch):
        chunk = readings[offset : offset + batch]
        now_ns = chunk[-1].ts_ns + NS_PER_S
        step = engine.process(chunk, now_ns)
        tick = engine.tick(now_ns)
        state_bytes += sum(len(blob) for blob in engine.dirty_state().values())
        events += len(step.events) + len(tick.events)
        transitions += len(step.transitions) + len(tick.transitions)
        escalations += sum(
            1
            for e in step.events
            if e.previous is not None and e.severity > e.previous and e.severity > Level.NORMAL
        )
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return EngineRun(elapsed, cpu, events, transitions, state_bytes, escalations)


def run_alerts_benchmark(
    stations: int = 10_000,
    readings: int = 200_000,
    batch: int = 500,
    trials: int = 3,
) -> dict[str, float]:
    """Measure and print; returns the figures."""
    start_ns = 1_767_225_600 * NS_PER_S
    say = print
    say(f"alerts benchmark: {stations:,} stations, {readings:,} readings, deliveries of {batch}")
    say(f"python {platform.python_version()} on {platform.machine()}, load {_load()}")
    built = time.perf_counter()
    registry = synthetic_registry(stations)
    stream = synthetic_readings(registry, readings, start_ns)
    say(f"built registry and readings in {time.perf_counter() - built:.1f} s")
    gc.collect()
    best_base, best_base_cpu = min(baseline(registry, stream) for _ in range(trials))
    runs = []
    for _ in range(trials):
        gc.collect()
        runs.append(engine_run(registry, stream, batch, start_ns))
    best = min(runs, key=lambda r: r.seconds)
    engine_rate = readings / best.seconds
    base_rate = readings / best_base
    engine_cpu_rate = readings / best.cpu_seconds
    base_cpu_rate = readings / best_base_cpu
    figures = {
        "stations": float(stations),
        "readings": float(readings),
        "baseline_per_s": base_rate,
        "engine_per_s": engine_rate,
        "baseline_per_cpu_s": base_cpu_rate,
        "engine_per_cpu_s": engine_cpu_rate,
        "engine_us_per_reading": best.seconds / readings * 1e6,
        "ratio": engine_rate / base_rate,
        "events": float(best.events),
        "transitions": float(best.transitions),
        "escalations": float(best.escalations),
        "state_bytes_per_reading": best.state_bytes / readings,
    }
    say(f"baseline (threshold lookup only): {base_rate:,.0f} readings/s")
    say(
        f"engine (rules, incidents, dedup, health, tick, state): {engine_rate:,.0f} readings/s "
        f"({figures['engine_us_per_reading']:.1f} us a reading, "
        f"{figures['ratio'] * 100:.1f} % of the baseline's rate)"
    )
    say(
        f"per CPU second (what one core does, whatever else runs): engine "
        f"{engine_cpu_rate:,.0f} readings/s, baseline {base_cpu_rate:,.0f} readings/s"
    )
    say(
        f"  {best.events:,} events, {best.transitions:,} transitions, {best.escalations:,} "
        f"escalations; {figures['state_bytes_per_reading']:.0f} state bytes per reading"
    )
    verdict = "meets" if engine_cpu_rate >= TARGET_PER_S else "MISSES"
    say(f"target >= {TARGET_PER_S:,.0f} readings/s on one core: {verdict}")
    return figures


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.alerts``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args(argv)
    run_alerts_benchmark(args.stations, args.readings, args.batch, args.trials)


if __name__ == "__main__":
    main()
