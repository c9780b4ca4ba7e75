"""Helpers shared by the alert tests: small registries and readings built in code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from alerts import journal
from alerts.engine import Engine
from alerts.journal import JournalBuffer
from devices.levels import Thresholds
from devices.readings import Reading
from devices.stations import Link, MetricSpec, StaticRegistry, Station

NS_PER_S = 1_000_000_000
MINUTE_NS = 60 * NS_PER_S
HOUR_NS = 3600 * NS_PER_S
T0 = 1_767_225_600 * NS_PER_S  # 2026-01-01T00:00:00Z

GAUGE = {
    "water_level_cm": MetricSpec(unit="cm", min=0, max=2000),
    "battery_v": MetricSpec(unit="V", min=0, max=15),
    "battery_pct": MetricSpec(unit="%", min=0, max=100),
}


def station(
    station_id: str,
    *,
    regency: str = "Testing",
    river: str | None = "Kali Uji",
    waspada: float = 100.0,
    siaga: float = 200.0,
    awas: float = 300.0,
    inclusive: bool = True,
    interval_s: int = 600,
    downstream: Iterable[tuple[str, float]] = (),
    thresholds: list[Thresholds] | None = None,
    rain_gauges: Iterable[str] = (),
    longitude: float = 106.0,
) -> Station:
    """A river gauge with thresholds (100/200/300 cm unless told)."""
    return Station(
        id=station_id,
        name=station_id,
        regency=regency,
        river=river,
        latitude=-6.0,
        longitude=longitude,
        metrics=GAUGE,
        interval_s=interval_s,
        downstream=[Link(station=s, travel_min=m) for s, m in downstream],
        thresholds=thresholds
        if thresholds is not None
        else [Thresholds(waspada_cm=waspada, siaga_cm=siaga, awas_cm=awas, inclusive=inclusive)],
        rain_gauges=list(rain_gauges),
    )


def rain_gauge(station_id: str, *, regency: str = "Testing", interval_s: int = 600) -> Station:
    """A tipping-bucket rain gauge (``rain_mm`` per report)."""
    return Station(
        id=station_id,
        name=station_id,
        regency=regency,
        latitude=-6.0,
        longitude=106.0,
        metrics={"rain_mm": MetricSpec(unit="mm", min=0, max=300)},
        interval_s=interval_s,
    )


def registry(*stations: Station) -> StaticRegistry:
    """A registry of these stations."""
    return StaticRegistry(stations)


def level(station_id: str, minutes: float, value_cm: float, **extra: float) -> Reading:
    """A water-level reading ``minutes`` after :data:`T0`."""
    return Reading(station_id, T0 + int(minutes * MINUTE_NS), {"water_level_cm": value_cm, **extra})


@dataclass
class HeldJournal:
    """What the incident store holds of an engine's journal, written as the alert loop writes it:
    an entry at each checkpoint, now and then a snapshot (its rows applied as the store would)."""

    held: dict[str, bytes] = field(default_factory=dict)
    number: int = 0
    unsnapshotted: list[int] = field(default_factory=list)

    def checkpoint(self, buffer: JournalBuffer) -> int:
        """Store what ``buffer`` recorded as the next entry; that entry's number."""
        body = buffer.take()
        assert body is not None
        self.number += 1
        self.held[journal.entry_key(self.number)] = body
        self.unsnapshotted.append(self.number)
        return self.number

    def snapshot(self, engine: Engine) -> None:
        """Store ``engine``'s changed state, and drop the entries it makes redundant."""
        rows = journal.snapshot(engine.dirty_state(), self.number, self.unsnapshotted)
        for key, value in rows.items():
            if value is None:
                self.held.pop(key, None)
            else:
                self.held[key] = value
        self.unsnapshotted = []
