"""The national fleet's pure parts: generated stations, payloads, the split over processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.formats.native import decode_native
from devices.stations import parse_stations
from simulators.fleet import (
    FleetSlice,
    fleet_levels,
    fleet_payload,
    fleet_station_id,
    fleet_stations_yaml,
    run_fleet,
    write_fleet_stations,
)
from simulators.runner import RunError


def test_generated_stations_load_as_a_registry(tmp_path: Path) -> None:
    path = write_fleet_stations(tmp_path / "fleet" / "stations.yaml", 250, interval_s=10)
    registry = parse_stations(path.read_text(), str(path))
    stations = registry.stations()
    assert [s.id for s in stations[:2]] == ["fleet-000001", "fleet-000002"]
    assert len(stations) == 250
    assert stations[-1].id == fleet_station_id(250) == "fleet-000250"
    assert all(s.interval_s == 10 for s in stations)
    assert all(-11 <= s.latitude <= 6 and 95 <= s.longitude <= 141 for s in stations)
    assert set(stations[0].metrics) == {"water_level_cm", "battery_v"}
    assert len({s.regency for s in stations}) > 200


def test_a_fleet_is_between_one_and_a_million_stations() -> None:
    with pytest.raises(ValueError, match="between 1 and 999,999"):
        fleet_stations_yaml(0)


def test_fleet_payloads_are_valid_native_readings() -> None:
    payload = fleet_payload(7, 1_795_000_000_123, 182.4, 12.61)
    decoded = decode_native(payload, "fleet-000001", 1)
    assert not decoded.rejections
    (reading,) = decoded.readings
    assert reading.ts_ns == 1_795_000_000_123 * 10**6
    assert reading.values == {"water_level_cm": 182.4, "battery_v": 12.61}
    assert reading.seq == 7


@pytest.mark.parametrize(("count", "processes"), [(10, 3), (100_000, 2), (5, 8)])
def test_the_slices_cover_every_station_once(count: int, processes: int) -> None:
    slices = [FleetSlice(w, w + 1, processes, count) for w in range(processes)]
    indices = np.concatenate([s.indices() for s in slices])
    assert sorted(indices.tolist()) == list(range(1, count + 1))


def test_the_cheap_model_stays_in_range_and_is_reproducible() -> None:
    indices = np.arange(1, 10_001, dtype=np.int64)
    levels = fleet_levels(indices, 1_795_000_000.0, seed=1)
    assert ((levels > 50) & (levels < 450)).all()
    assert np.array_equal(levels, fleet_levels(indices, 1_795_000_000.0, seed=1))


def test_nonsense_fleets_are_refused() -> None:
    with pytest.raises(RunError, match="must be positive"):
        run_fleet(stations=10, interval_s=0, duration_s=1, processes=1)
