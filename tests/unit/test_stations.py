"""The station registry file: the shipped one parses, and every fault names its station."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from devices.stations import (
    MetricSpec,
    StaticRegistry,
    Station,
    StationFileError,
    load_stations,
    parse_stations,
)
from tests.conftest import STATIONS_FILE

GAUGE = "{unit: cm, min: 0, max: 2000}"


def station_yaml(station_id: str = "a-1", **fields: str) -> str:
    """One station entry as a YAML flow mapping; ``fields`` override or add raw YAML values."""
    values = {
        "id": station_id,
        "name": "Gauge A",
        "regency": "Tulang Bawang",
        "latitude": "-4.47",
        "longitude": "105.24",
        "metrics": f"{{level_cm: {GAUGE}}}",
        **fields,
    }
    body = ", ".join(f"{key}: {value}" for key, value in values.items() if value != "<omit>")
    return f"  - {{{body}}}\n"


def parse_one(entry: str, profiles: str = "") -> Station:
    registry = parse_stations(f"{profiles}stations:\n{entry}", "test.yaml")
    [station] = registry.stations()
    return station


def refusal(document: str) -> str:
    with pytest.raises(StationFileError) as info:
        parse_stations(document, "test.yaml")
    return str(info.value)


ORIGINAL_STATIONS = {
    "wk-blambangan-umpu", "tb-banjar-agung", "tb-menggala", "tb-menggala-rain",
    "tb-dente-teladas", "tb-rawajitu-timur", "jr-bedadung-kota", "jr-arjasa-rain", "rb-lasem",
    "rb-pamotan-rain", "tl-tanjung", "tl-murung-pudak-rain",
}  # fmt: skip


def test_shipped_station_file_parses() -> None:
    registry = load_stations(STATIONS_FILE)
    stations = registry.stations()
    ids = [s.id for s in stations]
    assert len(ids) == len(set(ids))
    assert len(stations) >= 12  # the file grows; these twelve are the original example set
    assert set(ids) >= ORIGINAL_STATIONS
    regencies = Counter(s.regency for s in stations)
    assert len(regencies) >= 4
    assert {"Tulang Bawang", "Jember", "Rembang", "Tabalong"} <= set(regencies)
    assert regencies["Tulang Bawang"] >= 4
    assert all(-11 < s.latitude < 6 and 95 < s.longitude < 141 for s in stations)  # Indonesia


def test_shipped_station_takes_its_profile() -> None:
    station = load_stations(STATIONS_FILE).get("tb-menggala")
    assert station is not None
    assert station.regency == "Tulang Bawang"
    assert station.river == "Way Tulang Bawang"
    assert station.metrics == {
        "water_level_cm": MetricSpec(unit="cm", min=0, max=2000),
        "battery_v": MetricSpec(unit="V", min=0, max=15),
        "rssi_dbm": MetricSpec(unit="dBm", min=-150, max=0),
    }


def test_registry_get_and_order() -> None:
    registry = parse_stations(
        "stations:\n" + station_yaml("z-last") + station_yaml("a-first"), "test.yaml"
    )
    assert [s.id for s in registry.stations()] == ["z-last", "a-first"]  # file order
    assert registry.get("a-first") is registry.stations()[1]
    assert registry.get("missing") is None


def test_profile_with_inline_override_and_addition() -> None:
    profiles = (
        "profiles:\n"
        f"  river_gauge: {{water_level_cm: {GAUGE}, battery_v: {{unit: V, min: 0, max: 15}}}}\n"
    )
    station = parse_one(
        station_yaml(
            profile="river_gauge",
            metrics="{water_level_cm: {unit: m, min: -1, max: 20}, "
            "temp_c: {unit: C, min: -10, max: 60}}",
        ),
        profiles,
    )
    assert station.metrics == {
        "water_level_cm": MetricSpec(unit="m", min=-1, max=20),  # replaced whole
        "battery_v": MetricSpec(unit="V", min=0, max=15),
        "temp_c": MetricSpec(unit="C", min=-10, max=60),
    }


def test_profile_is_not_changed_by_a_station_override() -> None:
    profiles = f"profiles:\n  g: {{level_cm: {GAUGE}}}\n"
    registry = parse_stations(
        profiles
        + "stations:\n"
        + station_yaml("a", profile="g", metrics="{level_cm: {unit: m, min: 0, max: 1}}")
        + station_yaml("b", profile="g", metrics="<omit>"),
        "test.yaml",
    )
    b = registry.get("b")
    assert b is not None
    assert b.metrics == {"level_cm": MetricSpec(unit="cm", min=0, max=2000)}


def test_minimal_station_defaults() -> None:
    station = parse_one(station_yaml())
    assert station.river is None
    assert station.district is None
    assert station.interval_s == 900
    assert station.downstream == []
    assert station.thresholds == []
    assert station.metrics == {"level_cm": MetricSpec(unit="cm", min=0, max=2000)}


def test_range_bounds_may_be_equal() -> None:
    station = parse_one(station_yaml(metrics="{level_cm: {unit: cm, min: 5, max: 5}}"))
    assert station.metrics["level_cm"] == MetricSpec(unit="cm", min=5, max=5)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            station_yaml("gauge-1", latitude="91"),
            "test.yaml: stations[0] (gauge-1): latitude: Input should be less than or equal to 90",
        ),
        (
            station_yaml("gauge-1", latitude="-90.5"),
            "test.yaml: stations[0] (gauge-1): latitude: Input should be greater than or equal to"
            " -90",
        ),
        (
            station_yaml("gauge-1", longitude="180.01"),
            "test.yaml: stations[0] (gauge-1): longitude: Input should be less than or equal to"
            " 180",
        ),
        (
            station_yaml("gauge-1", latitude="north"),
            "test.yaml: stations[0] (gauge-1): latitude: Input should be a valid number",
        ),
        (
            station_yaml("gauge-1", metrics="{level_cm: {unit: cm, min: 10, max: 1}}"),
            "test.yaml: stations[0] (gauge-1): metrics.level_cm: Value error, min 10.0 is above"
            " max 1.0",
        ),
        (
            station_yaml("gauge-1", metrics=f"{{Level: {GAUGE}}}"),
            "test.yaml: stations[0] (gauge-1): metrics: Value error, metric name 'Level' must"
            " match",
        ),
        (station_yaml("gauge-1", metrics=f"{{seq: {GAUGE}}}"), "metric name 'seq' must match"),
        (station_yaml("gauge-1", metrics=f"{{ts: {GAUGE}}}"), "metric name 'ts' must match"),
        (
            station_yaml("gauge-1", metrics=f"{{station: {GAUGE}}}"),
            "metric name 'station' must match",
        ),
        (
            station_yaml("gauge-1", metrics="{}"),
            "test.yaml: stations[0] (gauge-1): metrics: Dictionary should have at least 1 item",
        ),
        (
            station_yaml("gauge-1", regency='"Tulang\\\\Bawang"'),
            "test.yaml: stations[0] (gauge-1): regency: Value error, must not contain control"
            " characters or backslashes",
        ),
        (
            station_yaml("gauge-1", name='"Gauge\\tA"'),
            "test.yaml: stations[0] (gauge-1): name: Value error, must not contain control",
        ),
        (
            station_yaml("gauge-1", river='"Way\\nKanan"'),
            "test.yaml: stations[0] (gauge-1): river: Value error, must not contain control",
        ),
        (station_yaml("-gauge"), "test.yaml: stations[0] (-gauge): id: String should match"),
        (
            station_yaml("gauge-1", colour="red"),
            "test.yaml: stations[0] (gauge-1): colour: Extra inputs are not permitted",
        ),
        (
            station_yaml("gauge-1", metrics="{level_cm: {unit: cm, min: 0}}"),
            "test.yaml: stations[0] (gauge-1): metrics.level_cm.max: Field required",
        ),
        (
            station_yaml("gauge-1", metrics="{level_cm: {unit: '', min: 0, max: 1}}"),
            "test.yaml: stations[0] (gauge-1): metrics.level_cm.unit: String should have at least",
        ),
        (
            station_yaml("gauge-1", payload_format="native"),  # now a device's business
            "test.yaml: stations[0] (gauge-1): payload_format: Extra inputs are not permitted",
        ),
        (
            station_yaml("gauge-1", district='"Menggala\\\\"'),
            "test.yaml: stations[0] (gauge-1): district: Value error, must not contain control",
        ),
        (
            station_yaml("gauge-1", interval_s="0"),
            "test.yaml: stations[0] (gauge-1): interval_s: Input should be greater than 0",
        ),
        (
            station_yaml("gauge-1", name="<omit>"),
            "test.yaml: stations[0] (gauge-1): name: Field required",
        ),
        (
            station_yaml("gauge-1", profile="nope"),
            "test.yaml: stations[0] (gauge-1): unknown profile 'nope'",
        ),
    ],
)
def test_faults_name_the_station_and_field(entry: str, expected: str) -> None:
    assert expected in refusal("stations:\n" + entry)


def test_fault_in_a_later_entry_names_its_index_and_id() -> None:
    message = refusal(
        "stations:\n" + station_yaml("first") + station_yaml("second", latitude="123")
    )
    assert message.startswith("test.yaml: stations[1] (second): latitude:")


def test_entry_without_id_is_named_by_index() -> None:
    message = refusal("stations:\n" + station_yaml(id="<omit>"))
    assert message.startswith("test.yaml: stations[0] (?): id: Field required")


def test_every_fault_of_an_entry_is_listed() -> None:
    message = refusal("stations:\n" + station_yaml("g", latitude="99", longitude="-999"))
    assert message == (
        "test.yaml: stations[0] (g): latitude: Input should be less than or equal to 90; "
        "longitude: Input should be greater than or equal to -180"
    )


def test_duplicate_id_is_refused() -> None:
    message = refusal("stations:\n" + station_yaml("twin") + station_yaml("twin"))
    assert message == "test.yaml: station id 'twin' appears twice"


def test_static_registry_refuses_duplicates_directly() -> None:
    station = parse_one(station_yaml("twin"))
    with pytest.raises(ValueError, match="station id 'twin' appears twice"):
        StaticRegistry([station, station])


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("stations: [unclosed", "test.yaml: not valid YAML"),
        ("", "test.yaml: expected a mapping with a list 'stations'"),
        ("- a\n- b\n", "test.yaml: expected a mapping with a list 'stations'"),
        ("stations: {a: 1}\n", "test.yaml: expected a mapping with a list 'stations'"),
        ("profiles: [a]\nstations: []\n", "test.yaml: 'profiles' must be a mapping"),
        ("stations:\n  - just a string\n", "test.yaml: stations[0]: expected a mapping"),
    ],
)
def test_document_level_faults(document: str, expected: str) -> None:
    assert refusal(document).startswith(expected)


def test_empty_station_list_is_an_empty_registry() -> None:
    assert parse_stations("stations: []\n").stations() == []


@pytest.mark.parametrize(
    ("profiles", "entry"),
    [
        ("profiles: {g: [1, 2]}\n", station_yaml("gauge-1", profile="g", metrics="<omit>")),
        ("profiles: {g: }\n", station_yaml("gauge-1", profile="g", metrics="<omit>")),
        ("", station_yaml("gauge-1", metrics="[level_cm, rain_mm]")),
        ("profiles: {g: {}}\n", station_yaml("gauge-1", profile="[g]")),
    ],
)
def test_malformed_metrics_are_a_station_file_error(profiles: str, entry: str) -> None:
    with pytest.raises(StationFileError, match=r"stations\[0\] \(gauge-1\)"):
        parse_stations(profiles + "stations:\n" + entry, "test.yaml")


def test_nan_range_bound_is_refused() -> None:
    with pytest.raises(StationFileError, match=r"metrics\.level_cm"):
        parse_stations(
            "stations:\n" + station_yaml(metrics="{level_cm: {unit: cm, min: .nan, max: 1}}")
        )


def test_load_stations_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(StationFileError, match=f"{missing}: cannot read: No such file"):
        load_stations(missing)


def test_load_stations_names_the_file_in_faults(tmp_path: Path) -> None:
    path = tmp_path / "stations.yaml"
    path.write_text("stations:\n" + station_yaml("g", latitude="100"), encoding="utf-8")
    with pytest.raises(StationFileError, match=rf"^{path}: stations\[0\] \(g\): latitude"):
        load_stations(path)
