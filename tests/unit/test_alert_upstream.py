"""Upstream early warnings: chained down the river with expected arrival times."""

from __future__ import annotations

from alerts.engine import Engine
from alerts.model import EventKind
from alerts.rules import upstream
from devices.levels import Level
from tests.alerting import HOUR_NS, MINUTE_NS, T0, level, registry, station

CILIWUNG = registry(
    station("katulampa", waspada=80, siaga=150, awas=200, downstream=[("depok", 180)]),
    station("depok", waspada=200, siaga=270, awas=350, downstream=[("manggarai", 360)]),
    station("manggarai", waspada=750, siaga=850, awas=950),
)


def test_reaches_add_up_travel_times_down_the_river() -> None:
    source = CILIWUNG.get("katulampa")
    assert source is not None
    reaches = upstream.reaches(source, CILIWUNG.get, max_travel_s=86400)
    assert reaches == (
        upstream.Reach("depok", 3 * HOUR_NS),
        upstream.Reach("manggarai", 9 * HOUR_NS),
    )
    assert upstream.reaches(source, CILIWUNG.get, max_travel_s=4 * 3600) == (
        upstream.Reach("depok", 3 * HOUR_NS),
    )


def test_a_cycle_in_the_links_ends() -> None:
    loop = registry(station("a", downstream=[("b", 10)]), station("b", downstream=[("a", 10)]))
    source = loop.get("a")
    assert source is not None
    assert upstream.reaches(source, loop.get, 86400) == (upstream.Reach("b", 10 * MINUTE_NS),)


def test_an_escalation_warns_every_station_downstream_with_its_expected_arrival() -> None:
    engine = Engine(CILIWUNG, started_ns=T0)
    step = engine.process([level("katulampa", 0, 40), level("katulampa", 60, 90)], T0)
    warnings = [e for e in step.events if e.kind is EventKind.UPSTREAM]
    at = T0 + 60 * MINUTE_NS
    assert [(e.subject, e.source, e.expected_at_ns, e.severity, e.rule) for e in warnings] == [
        ("depok", "katulampa", at + 3 * HOUR_NS, Level.WASPADA, "upstream:katulampa"),
        ("manggarai", "katulampa", at + 9 * HOUR_NS, Level.WASPADA, "upstream:katulampa"),
    ]
    # A higher level warns again, at the new severity; the same level does not.
    again = engine.process([level("katulampa", 70, 120), level("katulampa", 80, 155)], T0)
    assert [(e.subject, e.severity) for e in again.events if e.kind is EventKind.UPSTREAM] == [
        ("depok", Level.SIAGA),
        ("manggarai", Level.SIAGA),
    ]


def test_the_warning_clears_when_the_source_is_back_to_normal() -> None:
    engine = Engine(CILIWUNG, started_ns=T0)
    engine.process([level("katulampa", 0, 40), level("katulampa", 60, 90)], T0)
    step = engine.process([level("katulampa", 120, 70)], T0)
    cleared = [e for e in step.events if e.kind is EventKind.UPSTREAM]
    assert [(e.subject, e.firing) for e in cleared] == [("depok", False), ("manggarai", False)]
    assert {(t.subject, t.state.value) for t in step.transitions} >= {
        ("depok", "resolved"),
        ("manggarai", "resolved"),
    }


def test_a_fast_rise_warns_before_any_threshold() -> None:
    engine = Engine(CILIWUNG, started_ns=T0)
    step = engine.process([level("katulampa", 0, 10), level("katulampa", 10, 30)], T0)
    kinds = [(e.kind, e.subject) for e in step.events]
    assert (EventKind.RATE, "katulampa") in kinds
    assert (EventKind.UPSTREAM, "depok") in kinds
