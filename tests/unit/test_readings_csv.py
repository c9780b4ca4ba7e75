"""The long CSV of recorded readings that backtests and replays read."""

from __future__ import annotations

import pytest

from devices.readings import Reading
from devices.readings_csv import ReadingsCsvError, parse_readings_csv

S = 1_000_000_000


def test_what_spreadsheets_write_is_read() -> None:
    # A byte order mark, CRLF line ends, a header in another order and case, an extra column,
    # quoted cells with spaces, and a blank line.
    text = (
        "\ufeffValue,Metric,Station,TS,Note\r\n"
        '"90", water_level_cm ,ciliwung-katulampa,2025-03-03T10:00:00+07:00,"rising,\r\nfast"\r\n'
        "\r\n"
        "12.6,battery_v,ciliwung-katulampa,2025-03-03T03:00:00Z,\r\n"
    )
    parsed = parse_readings_csv(text, "export.csv")
    assert parsed.readings == [
        Reading(
            "ciliwung-katulampa", 1_740_970_800 * S, {"water_level_cm": 90.0, "battery_v": 12.6}
        )
    ]
    assert (parsed.rows, parsed.gaps, parsed.duplicates) == (2, 0, 0)


def test_epoch_seconds_and_milliseconds_and_either_time_column() -> None:
    seconds = parse_readings_csv("station,timestamp,metric,value\ns,1740970800,m,1\n")
    millis = parse_readings_csv("station,ts,metric,value\ns,1740970800000,m,1\n")
    assert seconds.readings == millis.readings == [Reading("s", 1_740_970_800 * S, {"m": 1.0})]


@pytest.mark.parametrize("gap", ["", "NaN", "nan", "NA", "n/a", "null", "-", " "])
def test_a_row_without_a_value_is_a_gap_counted_not_an_error(gap: str) -> None:
    parsed = parse_readings_csv(f"station,ts,metric,value\ns,2025-01-01T00:00:00Z,m,{gap}\n")
    assert (parsed.readings, parsed.rows, parsed.gaps) == ([], 1, 1)


def test_a_repeated_row_is_one_reading_and_a_conflicting_one_an_error() -> None:
    row = "s,2025-01-01T07:00:00+07:00,m,1.5"
    same = parse_readings_csv(f"station,ts,metric,value\n{row}\ns,1735689600,m,1.50\n")
    assert (len(same.readings), same.duplicates) == (1, 1)
    with pytest.raises(
        ReadingsCsvError, match=r"f\.csv: line 3: s m at this time is already on line 2, with 1\.5"
    ):
        parse_readings_csv(f"station,ts,metric,value\n{row}\n{row[:-3]}2\n", "f.csv")


def test_rows_are_sorted_by_time_then_station() -> None:
    parsed = parse_readings_csv(
        "station,ts,metric,value\nb,1740970900,m,1\nb,1740970800,m,2\na,1740970800,m,3\n"
    )
    assert [(r.station_id, r.ts_ns // S) for r in parsed.readings] == [
        ("a", 1740970800),
        ("b", 1740970800),
        ("b", 1740970900),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "",
            r"line 1: the header must name station,ts,metric,value \(missing station, ts, metric, ",
        ),
        ("station,time,metric,value\n", r"\(missing ts\)"),
        ("station,ts,metric,value\ns,yesterday,m,1\n", "line 2: ts 'yesterday' is not RFC 3339"),
        ("station,ts,metric,value\ns,2025-01-01T00:00:00,m,1\n", "line 2: .* no UTC offset"),
        ("station,ts,metric,value\ns,2025-01-01T00:00:00Z,m,high\n", "line 2: value 'high' is"),
        ("station,ts,metric,value\ns,2025-01-01T00:00:00Z,m,inf\n", "line 2: .* not a finite"),
        ("station,ts,metric,value\n,2025-01-01T00:00:00Z,m,1\n", "line 2: station and metric"),
        ("station,ts,metric,value\ns,2025-01-01T00:00:00Z\n", "line 2: expected 4 columns, got 2"),
        ('station,ts,metric,value\n"s\n",2025-01-01T00:00:00Z,m,x\n', "line 3: value 'x'"),
    ],
)
def test_what_cannot_be_read_names_the_line(text: str, problem: str) -> None:
    with pytest.raises(ReadingsCsvError, match=problem):
        parse_readings_csv(text, "f.csv")
