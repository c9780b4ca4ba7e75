"""The device registry: parsing, cross-checks with reasons, lookups by what a topic names."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices import TopicScheme
from devices.registry import RegistryFileError, load_registry, parse_registry
from devices.topics import Route, parse_route
from tests.conftest import REPO_ROOT

STATIONS = """
device_profiles:
  dds75:
    fields:
      distance: {metric: water_level_cm, unit: mm, kind: distance}
    distance_absent_mm: 0
stations:
  - {id: a, name: A, regency: R, latitude: 0, longitude: 0, mounting_height_cm: 500,
     metrics: {water_level_cm: {unit: cm, min: 0, max: 2000}}}
  - {id: b, name: B, regency: R, latitude: 0, longitude: 0,
     metrics: {water_level_cm: {unit: cm, min: 0, max: 2000}}}
"""


def test_the_shipped_registry_loads_and_resolves_every_kind_of_sender() -> None:
    registry = load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")
    assert {s.regency for s in registry.stations()} >= {
        "Tulang Bawang",
        "Jember",
        "Rembang",
        "Tabalong",
    }
    native = registry.for_station_topic("tb-menggala")
    assert native is not None
    assert native.device is not None
    assert native.device.id == "gauge-tb-menggala"
    ttn = registry.for_ttn("siaga-tulang-bawang", "dds75-dente-teladas")
    assert ttn is not None
    assert ttn.station.id == "tb-dente-teladas"
    assert ttn.profile is not None
    assert ttn.profile.distance_min_valid_mm == 280
    chirpstack = registry.for_chirpstack("a84041000181c7b2")
    assert chirpstack is not None
    assert chirpstack.station.id == "rb-lasem"
    katulampa = registry.get("ciliwung-katulampa")
    assert katulampa is not None
    assert katulampa.downstream[0].station == "ciliwung-depok"
    assert katulampa.downstream[0].travel_min == 180


def test_a_station_without_a_device_entry_is_a_native_station() -> None:
    registry = parse_registry(STATIONS)
    resolved = registry.for_station_topic("b")
    assert resolved is not None
    assert resolved.device is None


def test_revoked_devices_still_resolve_so_they_can_be_named() -> None:
    registry = parse_registry(STATIONS, "devices: [{id: d1, station: b, revoked: true}]")
    resolved = registry.for_station_topic("b")
    assert resolved is not None
    assert resolved.device is not None
    assert resolved.device.revoked


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ("devices: [{id: d1, station: nowhere}]", "unknown station 'nowhere'"),
        ("devices: [{id: d1, station: a}, {id: d1, station: b}]", "defined twice"),
        ("devices: [{id: d1, station: a}, {id: d2, station: a}]", "already has a direct device"),
        ("devices: [{id: d1, station: a, format: ttn, profile: dds75}]", "need lorawan ids"),
        (
            "devices: [{id: d1, station: a, format: ttn, profile: dds75,"
            " lorawan: {application_id: app}}]",
            "need lorawan.device_id",
        ),
        ("devices: [{id: d1, station: a, format: chirpstack}]", "need a profile"),
        ("devices: [{id: d1, station: a, profile: nope}]", "unknown profile 'nope'"),
        (
            "devices: [{id: d1, station: b, format: ttn, profile: dds75,"
            " lorawan: {application_id: x, device_id: y}}]",
            "needs the station's mounting_height",
        ),
        ("devices: [{id: D1!, station: a}]", "devices[0] (D1!): id"),
        (
            "devices: [{id: d1, station: a, lorawan: {application_id: x, dev_eui: '12'}}]",
            "dev_eui must be 16 hexadecimal digits",
        ),
        (
            "devices: [{id: d1, station: a, lorawan: {application_id: x,"
            " dev_eui: 0004123412341234}}]",
            "dev_eui must be quoted",
        ),
        ("integrations: [{id: i1, kind: mqtt, application_id: x}]", "integrations[0] (i1): kind"),
    ],
)
def test_bad_device_entries_name_the_entry_and_the_problem(devices: str, message: str) -> None:
    with pytest.raises(RegistryFileError, match=r"devices\.yaml") as caught:
        parse_registry(STATIONS, devices, devices_source="devices.yaml")
    assert message in str(caught.value)


def test_a_missing_devices_file_means_no_devices_yet(tmp_path: Path) -> None:
    stations = tmp_path / "stations.yaml"
    stations.write_text(STATIONS)
    registry = load_registry(stations, tmp_path / "devices.yaml")
    assert registry.devices == {}


@pytest.mark.parametrize(
    ("topic", "route"),
    [
        ("siaga/tb-menggala/telemetry", Route("native", "tb-menggala")),
        ("v3/siaga-tb@ttn/devices/dds75-1/up", Route("ttn", "dds75-1", "siaga-tb")),
        ("v3/siaga-tb/devices/dds75-1/up", Route("ttn", "dds75-1", "siaga-tb")),
        (
            "application/5d3b/device/a84041000181c7b2/event/status",
            Route("chirpstack", "A84041000181C7B2", "5d3b", "status"),
        ),
        ("v3/app/devices/d/down/push", None),
        ("application/5d3b/device/nothex/event/up", None),
        ("siaga/tb-menggala/telemetry/extra", None),
    ],
)
def test_topics_route_to_what_they_name(topic: str, route: Route | None) -> None:
    assert parse_route(topic, TopicScheme()) == route
