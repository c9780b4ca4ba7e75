"""Did the run keep the scenario's promises? Judged on the readings really sent, not the model.

The scenario tests hold the noise-free model to its ``expect`` entries. A person watching a run
wants to know something else: whether the readings that went out over MQTT (noise included, cut
short if the run was stopped) crossed the levels the scenario promised, and when. Pure.
"""

from __future__ import annotations

from devices.levels import level_at
from devices.registry import Registry
from simulators.runner import RunReport
from simulators.scenario import ExpectationResult, Scenario, resolve_level

NS_PER_S = 1_000_000_000


def _hours(ns: int) -> str:
    return f"{ns / NS_PER_S / 3600:.1f} h"


def check_sent(
    scenario: Scenario, registry: Registry, report: RunReport
) -> list[ExpectationResult]:
    """Judge each ``reaches`` promise against the sent water levels.

    A promise holds when the station's sent readings first reach the level within the promised
    window (relative to the run's simulated start), judged by the thresholds in force at each
    reading's time. Other kinds of promise are about the model's shape and are left to tests.
    """
    results: list[ExpectationResult] = []
    for expect in scenario.expect:
        if expect.reaches is None or expect.within_s is None or expect.station == "*":
            continue
        station = registry.get(expect.station)
        if station is None or not station.thresholds:
            continue
        level = resolve_level(expect.reaches, station)
        start_s, end_s = expect.within_s
        promise = f"reaches {level.name} between {start_s / 3600:.1f} h and {end_s / 3600:.1f} h"
        first: int | None = None
        for ts_ns, value in sorted(report.levels.get(station.id, [])):
            reached = level_at(station.thresholds, value, ts_ns)
            if reached is not None and reached >= level:
                first = ts_ns - report.start_ns
                break
        if first is None:
            observed = "not reached" + (" before the run was stopped" if report.interrupted else "")
            results.append(ExpectationResult(station.id, promise, False, observed))
            continue
        held = start_s * NS_PER_S <= first <= end_s * NS_PER_S
        results.append(ExpectationResult(station.id, promise, held, f"at {_hours(first)}"))
    return results
