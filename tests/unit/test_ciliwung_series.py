"""The Ciliwung gates' wide hourly table becomes readings the backtests read."""

from __future__ import annotations

from benchmarks.ciliwung import readings_rows
from devices.readings_csv import parse_readings_csv

WIDE = """\ufeffTanggal,Katulampa (air),Katulampa (cuaca),Depok (air),Depok (cuaca),Manggarai (air),Manggarai (cuaca)
2021-10-16 00:00:00,10.0,Mendung,80.0,Terang,555.0,Terang
2021-10-16 01:00:00,,Mendung Tipis,95.0,Terang,560.5,Terang
"""  # noqa: E501 - the header as published


def test_the_wide_table_becomes_readings_at_wib() -> None:
    lines = list(readings_rows(WIDE.lstrip("\ufeff").splitlines()))
    assert lines[0] == "station,ts,metric,value"
    assert lines[1] == "ciliwung-katulampa,2021-10-16T00:00:00+07:00,water_level_cm,10"
    assert "ciliwung-manggarai,2021-10-16T01:00:00+07:00,water_level_cm,560.5" in lines
    assert not any(line.startswith("ciliwung-katulampa,2021-10-16T01") for line in lines)
    parsed = parse_readings_csv("\n".join(lines), "ciliwung.csv")
    assert len(parsed.readings) == 5
    assert {r.station_id for r in parsed.readings} == {
        "ciliwung-katulampa",
        "ciliwung-depok",
        "ciliwung-manggarai",
    }
