"""Line protocol: exact bytes for every escape, refusals for what it cannot carry."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices import MetricSpec, Reading, Reason, Rejection, StaticRegistry, Station
from ingest.batch import StoredRejection
from ingest.lineprotocol import (
    LineProtocolError,
    encode_fields,
    encode_line,
    escape_key,
    escape_measurement,
    escape_string_field,
    format_field_value,
    series_key,
)
from ingest.storage.influx import LineEncoder, registry_tags

TS = 1_700_000_000_000_000_000


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("telemetry", "telemetry"),
        ("my measurement", r"my\ measurement"),
        ("a,b", r"a\,b"),
        ("a=b", "a=b"),  # '=' needs no escape in a measurement
        ('say "x"', r'say\ "x"'),
        ("back\\slash", "back\\slash"),
        ("tab\there", "tab\there"),
        ("ketinggian air", r"ketinggian\ air"),
        ("日本語", "日本語"),
    ],
)
def test_escape_measurement(name: str, escaped: str) -> None:
    assert escape_measurement(name) == escaped


@pytest.mark.parametrize(
    ("key", "escaped"),
    [
        ("station", "station"),
        ("Tulang Bawang", r"Tulang\ Bawang"),
        ("a,b=c d", r"a\,b\=c\ d"),
        ("  ", r"\ \ "),
        ('"quoted"', '"quoted"'),
        ("back\\slash", "back\\slash"),
        ("Sungai Tabalong é ü", r"Sungai\ Tabalong\ é\ ü"),
        ("水位", "水位"),
        ("emoji 🌧", r"emoji\ 🌧"),
    ],
)
def test_escape_key_for_tag_keys_values_and_field_keys(key: str, escaped: str) -> None:
    assert escape_key(key) == escaped


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", '"plain"'),
        ("", '""'),
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ("ends with\\", r'"ends with\\"'),
        ('\\"', r'"\\\""'),
        ("line one\nline two\r\n", '"line one\nline two\r\n"'),  # kept inside strings
        ("a,b=c d", '"a,b=c d"'),  # no key escapes inside strings
        ("Kali Bedadung — Jember 🌊", '"Kali Bedadung — Jember 🌊"'),
    ],
)
def test_escape_string_field(value: str, quoted: str) -> None:
    assert escape_string_field(value) == quoted
    assert format_field_value(value) == quoted


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0i"),
        (17, "17i"),
        (-5, "-5i"),
        (9_223_372_036_854_775_807, "9223372036854775807i"),
        (1.0, "1.0"),
        (182.4, "182.4"),
        (0.1, "0.1"),
        (-0.0, "-0.0"),
        (1e16, "1e+16"),
        (1e-7, "1e-07"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)
def test_format_field_value(value: float | bool | str, text: str) -> None:
    assert format_field_value(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_round_trips_exactly(value: float) -> None:
    text = format_field_value(value)
    assert not text.endswith("i")
    assert float(text) == value
    assert math.copysign(1.0, float(text)) == math.copysign(1.0, value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float_is_refused(value: float) -> None:
    with pytest.raises(LineProtocolError, match="is not finite"):
        format_field_value(value)


@pytest.mark.parametrize(
    ("function", "text", "message"),
    [
        (escape_measurement, "", "measurement must not be empty"),
        (escape_measurement, "a\nb", "contains a line break"),
        (escape_measurement, "a\rb", "contains a line break"),
        (escape_measurement, "ends\\", "ends in a backslash"),
        (escape_key, "", "key must not be empty"),
        (escape_key, "a\nb", "contains a line break"),
        (escape_key, "\r", "contains a line break"),
        (escape_key, "ends\\", "ends in a backslash"),
        (escape_key, "\\", "ends in a backslash"),
    ],
)
def test_refusals(function: object, text: str, message: str) -> None:
    with pytest.raises(LineProtocolError, match=message):
        function(text)  # type: ignore[operator]


def test_series_key_sorts_tags_and_omits_empty_values() -> None:
    tags = {"station": "tb-menggala", "river": "", "regency": "Tulang Bawang", "a": "1"}
    assert series_key("telemetry", tags) == (
        r"telemetry,a=1,regency=Tulang\ Bawang,station=tb-menggala"
    )
    assert series_key("telemetry", {}) == "telemetry"
    assert series_key("telemetry", {"river": ""}) == "telemetry"
    assert series_key("my m", {"k k": "v,v"}) == r"my\ m,k\ k=v\,v"


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"station": "a\nb"}, "contains a line break"),
        ({"sta\ntion": "a"}, "contains a line break"),
        ({"station": "ends\\"}, "ends in a backslash"),
        ({"": "value"}, "key must not be empty"),
    ],
)
def test_series_key_refuses_tags_line_protocol_cannot_carry(
    tags: dict[str, str], message: str
) -> None:
    with pytest.raises(LineProtocolError, match=message):
        series_key("telemetry", tags)


def test_encode_fields_keeps_order_and_types() -> None:
    fields = {"z": 1.5, "a b": 'x"y', "n": 3, "ok": True}
    assert encode_fields(fields) == r'z=1.5,a\ b="x\"y",n=3i,ok=true'


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "at least one field"),
        ({"": 1.0}, "key must not be empty"),
        ({"a\nb": 1.0}, "contains a line break"),
        ({"level": float("nan")}, "is not finite"),
    ],
)
def test_encode_fields_refusals(fields: dict[str, float], message: str) -> None:
    with pytest.raises(LineProtocolError, match=message):
        encode_fields(fields)


def test_encode_line_exact() -> None:
    line = encode_line(
        "rejected",
        {"station": "tb-menggala", "reason": "out_of_range"},
        {"topic": "siaga/tb-menggala/telemetry", "payload": '{"a": 1}\n', "count": 2},
        TS,
    )
    assert line == (
        "rejected,reason=out_of_range,station=tb-menggala "
        'topic="siaga/tb-menggala/telemetry",payload="{\\"a\\": 1}\n",count=2i '
        "1700000000000000000"
    )


def test_encode_line_with_negative_and_zero_timestamps() -> None:
    assert encode_line("m", {}, {"f": 1.0}, 0) == "m f=1.0 0"
    assert encode_line("m", {}, {"f": 1.0}, -1) == "m f=1.0 -1"


# -- the storage's encoder ----------------------------------------------------------------------


def menggala(river: str | None = "Way Tulang Bawang") -> Station:
    return Station(
        id="tb-menggala",
        name="Way Tulang Bawang at Menggala",
        regency="Tulang Bawang",
        river=river,
        latitude=-4.4711,
        longitude=105.2426,
        metrics={"water_level_cm": MetricSpec(unit="cm", min=0, max=2000)},
    )


def test_registry_tags() -> None:
    tags = registry_tags(StaticRegistry([menggala()]))
    assert tags("tb-menggala") == {
        "station": "tb-menggala",
        "regency": "Tulang Bawang",
        "river": "Way Tulang Bawang",
    }
    assert tags("unknown-1") == {"station": "unknown-1"}
    assert registry_tags(StaticRegistry([menggala(river=None)]))("tb-menggala")["river"] == ""


def test_line_encoder_reading_exact() -> None:
    encoder = LineEncoder(registry_tags(StaticRegistry([menggala()])))
    reading = Reading("tb-menggala", TS, {"water_level_cm": 182.4, "battery_v": 12.0}, 17)
    assert encoder.reading(reading) == (
        r"telemetry,regency=Tulang\ Bawang,river=Way\ Tulang\ Bawang,station=tb-menggala "
        "water_level_cm=182.4,battery_v=12.0,seq=17i 1700000000000000000"
    )


def test_line_encoder_reading_without_seq_or_river() -> None:
    encoder = LineEncoder(registry_tags(StaticRegistry([menggala(river=None)])))
    reading = Reading("tb-menggala", TS, {"water_level_cm": 1e-7, "odd key": -0.0})
    assert encoder.reading(reading) == (
        r"telemetry,regency=Tulang\ Bawang,station=tb-menggala "
        r"water_level_cm=1e-07,odd\ key=-0.0 1700000000000000000"
    )


def test_line_encoder_refuses_a_reading_without_values() -> None:
    encoder = LineEncoder(lambda station_id: {"station": station_id})
    with pytest.raises(LineProtocolError):
        encoder.reading(Reading("tb-menggala", TS, {}, 5))


def test_line_encoder_caches_series_until_told_to_forget() -> None:
    calls: list[str] = []
    regency = ["Jember"]

    def tags(station_id: str) -> dict[str, str]:
        calls.append(station_id)
        return {"station": station_id, "regency": regency[0]}

    encoder = LineEncoder(tags)
    reading = Reading("jr-arjasa", TS, {"rain_mm": 2.5})
    first = encoder.reading(reading)
    regency[0] = "Rembang"
    assert encoder.reading(reading) == first
    assert calls == ["jr-arjasa"]
    encoder.forget_stations()
    assert encoder.reading(reading) == (
        "telemetry,regency=Rembang,station=jr-arjasa rain_mm=2.5 1700000000000000000"
    )
    assert calls == ["jr-arjasa", "jr-arjasa"]


def test_line_encoder_rejection_exact() -> None:
    stored = StoredRejection(
        Rejection(Reason.OUT_OF_RANGE, 'level = 9e9 is "high"', "tb-menggala"),
        "siaga/tb-menggala/telemetry",
        '{"level": 9e9}\n\\',
        TS + 1,
    )
    assert LineEncoder.rejection(stored) == (
        "rejected,reason=out_of_range,station=tb-menggala "
        'topic="siaga/tb-menggala/telemetry",payload="{\\"level\\": 9e9}\n\\\\",'
        'detail="level = 9e9 is \\"high\\"" 1700000000000000001'
    )


@pytest.mark.parametrize("station_id", [None, ""])
def test_line_encoder_rejection_without_station(station_id: str | None) -> None:
    stored = StoredRejection(
        Rejection(Reason.BAD_TOPIC, "topic 'x y' is not a telemetry topic", station_id),
        "x y",
        "",
        TS,
    )
    assert LineEncoder.rejection(stored) == (
        'rejected,reason=bad_topic topic="x y",payload="",'
        "detail=\"topic 'x y' is not a telemetry topic\" 1700000000000000000"
    )


def test_the_reading_encoder_caches_nothing_that_changes_a_line() -> None:
    # Templates per station and metrics, and texts per float value, are caches: each line
    # must be what formatting it afresh gives, whatever came before it.
    encoder = LineEncoder(lambda station: {"station": station, "river": "Way 50%"})
    values: list[float] = [0.0, -0.0, 97.0, 97, True, 1e16, 5e-324, 3.91, -3.91, float("nan")]
    for value in values * 2:
        for seq in (None, 7):
            reading = Reading("s%d", 1_700_000_000_000_000_000, {"w%": value, "b v": 2.5}, seq)
            fields = f"w%={value!r},b\\ v=2.5" + ("" if seq is None else f",seq={seq}i")
            expected = f"telemetry,river=Way\\ 50%,station=s%d {fields} 1700000000000000000"
            assert encoder.reading(reading) == expected
