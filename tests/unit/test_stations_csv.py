"""The national-size registry: a CSV beside the YAML, and the fast path, give the same stations
and the same errors as validating every YAML entry alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.registry import load_registry, registry_files
from devices.stations import (
    Station,
    StationFileError,
    load_stations,
    parse_stations,
    parse_stations_csv,
    stations_from_document,
)
from simulators.fleet import write_fleet_stations

PROFILES = """\
profiles:
  gauge:
    water_level_cm: {unit: cm, min: 0, max: 2000}
    battery_v: {unit: V, min: 0, max: 15}
"""


def slow(entry: dict[str, object], metrics: dict[str, object]) -> Station:
    """What validating the entry alone with pydantic gives."""
    fields = {k: v for k, v in entry.items() if k != "profile"}
    return Station.model_validate({**fields, "metrics": metrics})


def test_the_fleet_as_csv_and_as_yaml_is_the_same_registry(tmp_path: Path) -> None:
    as_yaml = load_stations(write_fleet_stations(tmp_path / "y.yaml", 300, as_csv=False))
    path = write_fleet_stations(tmp_path / "c.yaml", 300, as_csv=True)
    as_csv = load_stations(path)
    assert (tmp_path / "c.csv").exists()
    assert len(as_csv.stations()) == 300
    assert as_csv.stations() == as_yaml.stations()
    assert [s.model_dump() for s in as_csv.stations()] == [
        s.model_dump() for s in as_yaml.stations()
    ]
    assert registry_files(path) == [path, tmp_path / "c.csv"]
    assert load_registry(path).get("fleet-000300") == as_yaml.get("fleet-000300")


def test_fast_built_stations_equal_validated_ones_in_every_respect() -> None:
    document = parse_stations(
        PROFILES
        + """stations:
  - {id: a-1, name: A, regency: R, latitude: -4, longitude: 105.5, profile: gauge}
  - {id: a-2, name: B, regency: R, river: Way Kanan, latitude: -4.5, longitude: 105,
     interval_s: 60, mounting_height_cm: 350, datum_m: 12.5, profile: gauge,
     thresholds: [{waspada_cm: 80, siaga_cm: 150, awas_cm: 200, inclusive: false}]}
"""
    )
    first, second = document.stations()
    metrics = first.model_dump()["metrics"]
    for station in (first, second):
        entry = station.model_dump(exclude_unset=True)
        expected = slow(entry, metrics)
        assert station == expected
        assert station.model_fields_set == expected.model_fields_set
        assert station.model_dump() == expected.model_dump()
        assert isinstance(station.latitude, float)
    assert first.metrics is second.metrics  # one mapping per profile, shared


@pytest.mark.parametrize(
    ("cells", "problem"),
    [
        ("a-1,A,R,-91,105,10", "latitude: Input should be greater than or equal to -90"),
        ("a-1,A,R,north,105,10", "latitude: Input should be a valid number"),
        ("a 1,A,R,-4,105,10", "id: String should match pattern"),
        ("a-1,A,R,-4,105,0", "interval_s: Input should be greater than 0"),
        ("a-1,A,R,-4,105,ten", "interval_s: Input should be a valid integer"),
        ("a-1,A\\B,R,-4,105,10", "name: Value error, must not contain control characters"),
        ("a-1,,R,-4,105,10", "name: Field required"),
    ],
)
def test_a_bad_csv_row_is_refused_with_the_yaml_wording(cells: str, problem: str) -> None:
    header = "id,name,regency,latitude,longitude,interval_s,profile"
    rows = parse_stations_csv(f"{header}\nok-1,A,R,-4,105,10,gauge\n{cells},gauge\n", "s.csv")
    document = parse_stations(PROFILES + "stations: []\n")  # profiles only
    assert not document.stations()
    with pytest.raises(StationFileError) as info:
        stations_from_document(
            {"profiles": {"gauge": {"level_cm": {"unit": "cm", "min": 0, "max": 9}}}},
            "s.yaml",
            rows,
            "s.csv",
        )
    message = str(info.value)
    assert message.startswith(f"s.csv: line 3 ({cells.split(',', maxsplit=1)[0]}): ")
    assert problem in message
    # The same value in YAML gets the same words.
    yaml_value = cells.split(",")
    if yaml_value[1]:
        yaml_entry = (
            f"  - {{id: '{yaml_value[0]}', name: '{yaml_value[1]}', regency: R, "
            f"latitude: '{yaml_value[3]}', longitude: 105, interval_s: '{yaml_value[5]}', "
            "profile: gauge}\n"
        )
        with pytest.raises(StationFileError) as yaml_info:
            parse_stations(PROFILES + "stations:\n" + yaml_entry, "s.yaml")
        assert problem in str(yaml_info.value)


def test_csv_thresholds_become_one_shared_version() -> None:
    rows = parse_stations_csv(
        "id,name,regency,latitude,longitude,profile,waspada_cm,siaga_cm,awas_cm,threshold_scheme\n"
        "a-1,A,R,-4,105,gauge,80,150,200,jakarta-gates\n"
        "a-2,B,R,-4,105,gauge,80,150,200,jakarta-gates\n"
        "a-3,C,R,-4,105,gauge,80,150,200,jakarta-gates\n"
        "a-4,D,R,-4,105,gauge,,,,\n"
    )
    profiles = {"gauge": {"level_cm": {"unit": "cm", "min": 0, "max": 9}}}
    stations = stations_from_document({"profiles": profiles}, "s", rows).stations()
    assert stations[0].thresholds[0].siaga_cm == 150.0
    assert stations[0].thresholds[0].scheme == "jakarta-gates"
    assert stations[0].thresholds == stations[1].thresholds
    assert stations[1].thresholds is stations[2].thresholds  # validated once, shared
    assert stations[3].thresholds == []


def test_bad_csv_header_and_width_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StationFileError, match="unknown: colour"):
        parse_stations_csv("id,colour\na,b\n", "s.csv")
    with pytest.raises(StationFileError, match="including id"):
        parse_stations_csv("name\nA\n", "s.csv")
    with pytest.raises(StationFileError, match="line 3: 1 cells, expected 2"):
        parse_stations_csv("id,name\na,A\nb\n", "s.csv")
    (tmp_path / "s.yaml").write_text("stations_csv: missing.csv\n")
    with pytest.raises(StationFileError, match=r"missing\.csv: cannot read"):
        load_stations(tmp_path / "s.yaml")


def test_a_station_in_both_the_yaml_and_the_csv_is_refused() -> None:
    rows = parse_stations_csv("id,name,regency,latitude,longitude,profile\na-1,A,R,-4,105,gauge\n")
    document = {
        "profiles": {"gauge": {"level_cm": {"unit": "cm", "min": 0, "max": 9}}},
        "stations": [
            {"id": "a-1", "name": "A", "regency": "R", "latitude": 0, "longitude": 0,
             "profile": "gauge"},
        ],
    }  # fmt: skip
    with pytest.raises(StationFileError, match="'a-1' appears twice"):
        stations_from_document(document, "s.yaml", rows, "s.csv")
