"""A registry reload follows the CSV its stations file links, and measures its stall."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from devices.registry import load_registry, registry_files
from ingest.metrics import IngestMetrics
from ingest.registry_watch import RegistryWatcher
from simulators.fleet import write_fleet_stations


def test_editing_the_linked_csv_reloads_and_the_stall_is_measured(tmp_path: Path) -> None:
    stations = write_fleet_stations(tmp_path / "fleet.yaml", 50, as_csv=True)
    csv_file = tmp_path / "fleet.csv"
    applied: list[int] = []
    metrics = IngestMetrics()
    watcher = RegistryWatcher(
        lambda: registry_files(stations),
        lambda: load_registry(stations),
        lambda registry: applied.append(len(registry.stations())),
        interval_s=60,
        metrics=metrics,
    )
    assert not asyncio.run(watcher.check())
    lines = csv_file.read_text().splitlines()
    csv_file.write_text("\n".join(lines[:-10]) + "\n")  # ten stations retired
    stat = csv_file.stat()
    os.utime(csv_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert asyncio.run(watcher.check())
    assert applied == [40]
    assert watcher.last_load_s >= watcher.last_stall_s >= 0
    stall = metrics.registry.get_sample_value("siaga_registry_reload_stall_seconds")
    assert stall == watcher.last_stall_s


def test_a_broken_csv_keeps_the_last_good_registry(tmp_path: Path) -> None:
    stations = write_fleet_stations(tmp_path / "fleet.yaml", 20, as_csv=True)
    applied: list[int] = []
    watcher = RegistryWatcher(
        lambda: registry_files(stations),
        lambda: load_registry(stations),
        lambda registry: applied.append(len(registry.stations())),
        interval_s=60,
    )
    (tmp_path / "fleet.csv").write_text("id,colour\nx,red\n")
    assert not asyncio.run(watcher.check())
    assert applied == []
