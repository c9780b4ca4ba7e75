"""Line protocol against a real influxd 1.6: what encode_line writes is exactly what is read back.

What influxd 1.6 was found to accept, by running this file (not by reading its documentation):

* String field values: any text, NUL and other control characters included, line breaks too.
* Tag keys and values, field keys: any text without line breaks that does not end in a
  backslash (both refused by the encoder); other control characters are left out of the
  strategies as the Siaga station schema forbids them in tags anyway.
* ``time`` is refused as a tag key or field key ("invalid tag key" / "invalid field name").
* A field key with a backslash right before a space, comma or equals sign cannot be written:
  influxd answers 400 "invalid field format"; one with a backslash before a double quote is
  stored without the backslash. Measurement names lose the backslash before all four, and a
  measurement starting with '#' is read as a comment and dropped. The encoder refuses all of
  these (tested below). Tag keys and tag values with the same sequences round-trip exactly.
* The sign of a zero float is not kept: -0.0 reads back as 0.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.lineprotocol import FieldValue, LineProtocolError, encode_line
from ops.servers import InfluxServer

pytestmark = pytest.mark.integration

WEEK_NS = 7 * 86400 * 1_000_000_000
BASE_NS = 1_700_000_000_000_000_000 // WEEK_NS * WEEK_NS  # one shard group for every example


@dataclass
class Influx:
    client: httpx.Client
    database: str

    def write(self, line: str) -> httpx.Response:
        return self.client.post(
            "/write", params={"db": self.database, "precision": "ns"}, content=line.encode()
        )

    def query(self, statement: str) -> list[dict[str, Any]]:
        response = self.client.get(
            "/query", params={"db": self.database, "epoch": "ns", "q": statement}
        )
        response.raise_for_status()
        result = response.json()["results"][0]
        assert "error" not in result, result
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def point(self, measurement: str) -> tuple[dict[str, str], dict[str, Any], int] | None:
        """The one point of a measurement: tags, fields, time."""
        series = self.query(f'SELECT * FROM "{measurement}" GROUP BY *')
        if not series:
            return None
        assert len(series) == 1, series
        [row] = series[0]["values"]
        fields = {c: v for c, v in zip(series[0]["columns"], row, strict=True) if c != "time"}
        return series[0].get("tags") or {}, fields, row[0]

    def field_types(self, measurement: str) -> dict[str, str]:
        series = self.query(f'SHOW FIELD KEYS FROM "{measurement}"')
        return dict(series[0]["values"])


@pytest.fixture
def influx(influx_session: InfluxServer, database: str) -> Iterator[Influx]:
    with httpx.Client(base_url=influx_session.url, timeout=10) as client:
        client.post("/query", params={"q": f'CREATE DATABASE "{database}"'}).raise_for_status()
        yield Influx(client, database)
        client.post("/query", params={"q": f'DROP DATABASE "{database}"'})


MEASUREMENTS = (f"rt_{n}" for n in itertools.count())

# Line breaks are refused by the encoder; other control characters are kept out of names.
NAME_CHARACTERS = st.characters(blacklist_categories=("Cc", "Cs"))
UNWRITABLE_FIELD_KEY = re.compile(r'\\[ ,="]')


def plain_name(text: str) -> bool:
    return not text.endswith("\\") and text != "time"


TAG_NAMES = st.text(NAME_CHARACTERS, min_size=1, max_size=12).filter(plain_name)
TAG_VALUES = st.text(NAME_CHARACTERS, min_size=1, max_size=20).filter(plain_name)
FIELD_KEYS = TAG_NAMES.filter(lambda key: not UNWRITABLE_FIELD_KEY.search(key))
FIELD_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
)
INFLUX_TYPES = {float: "float", int: "integer", bool: "boolean", str: "string"}


def assert_same_value(got: Any, sent: FieldValue) -> None:
    if isinstance(sent, float):
        # JSON renders integral floats without a decimal point: compare as floats, exactly.
        assert isinstance(got, int | float), got
        assert not isinstance(got, bool), got
        assert float(got) == sent, (got, sent)
    else:
        assert type(got) is type(sent), (got, sent)
        assert got == sent


def round_trip(
    influx: Influx, tags: dict[str, str], fields: dict[str, FieldValue], ts_ns: int
) -> None:
    measurement = next(MEASUREMENTS)
    line = encode_line(measurement, tags, fields, ts_ns)
    response = influx.write(line)
    assert response.status_code == 204, (line, response.text)
    point = influx.point(measurement)
    assert point is not None, line
    got_tags, got_fields, got_ts = point
    assert got_tags == tags, line
    assert got_ts == ts_ns
    assert set(got_fields) == set(fields), line
    for key, value in fields.items():
        assert_same_value(got_fields[key], value)
    assert influx.field_types(measurement) == {k: INFLUX_TYPES[type(v)] for k, v in fields.items()}


def test_round_trip_of_generated_points(influx: Influx) -> None:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.dictionaries(TAG_NAMES, TAG_VALUES, max_size=4),
        st.dictionaries(FIELD_KEYS, FIELD_VALUES, min_size=1, max_size=5),
        st.integers(min_value=0, max_value=WEEK_NS - 1),
    )
    def check(tags: dict[str, str], fields: dict[str, FieldValue], offset_ns: int) -> None:
        fields = {key: value for key, value in fields.items() if key not in tags}
        if fields:
            round_trip(influx, tags, fields, BASE_NS + offset_ns)

    check()


@pytest.mark.parametrize(
    ("tags", "fields"),
    [
        (
            {"station": "tb-menggala", "regency": "Tulang Bawang", "river": "Way Tulang Bawang"},
            {"water_level_cm": 182.4, "seq": 17},
        ),
        ({"t": "a b,c=d"}, {"k e,y=": "v"}),
        ({"t": "a\\ b", "u": "a\\,b", "v": "a\\=b", "w": "\\x"}, {"f": 1.0}),
        ({"a\\ b": "1", "a\\,b": "2", "a\\=b": "3"}, {"f": 1.0}),
        ({"t": '"quoted"'}, {'q"': 2.0, "f\\x": 3.0}),
        ({"t": "x"}, {"s": 'line one\nline two\r\n"quoted" \\ back\\'}),
        ({"t": "x"}, {"s": "nul\x00 and \x01\x7f\x85\u2028"}),
        ({"t": "x"}, {"s": ""}),
        ({"t": "日本 é 🌧"}, {"水位": -1.5e-300, "big": 1.7976931348623157e308, "tiny": 5e-324}),
        ({"t": "x"}, {"i": -(2**63), "j": 2**63 - 1, "b": True, "c": False, "z": 1e16}),
    ],
)
def test_round_trip_of_chosen_points(
    influx: Influx, tags: dict[str, str], fields: dict[str, FieldValue]
) -> None:
    round_trip(influx, tags, fields, BASE_NS + 1)


@pytest.mark.parametrize("ts_ns", [0, 1, -1_000_000_000, 2**62, BASE_NS + 123_456_789])
def test_round_trip_of_timestamps(influx: Influx, ts_ns: int) -> None:
    round_trip(influx, {"t": "x"}, {"f": 1.0}, ts_ns)


def test_negative_zero_reads_back_as_zero(influx: Influx) -> None:
    measurement = next(MEASUREMENTS)
    assert influx.write(encode_line(measurement, {}, {"f": -0.0}, BASE_NS)).status_code == 204
    point = influx.point(measurement)
    assert point is not None
    assert point[1]["f"] == 0
    assert math.copysign(1.0, point[1]["f"]) == 1.0  # influxd's doing, not the encoder's


@pytest.mark.parametrize(
    ("tags", "fields", "error"),
    [
        ({"time": "x"}, {"f": 1.0}, "invalid tag key"),
        ({"t": "x"}, {"time": 1.0}, "invalid field name"),
        ({"t": "x"}, {"i": 2**63}, "unable to parse integer"),
    ],
)
def test_what_influxd_refuses(
    influx: Influx, tags: dict[str, str], fields: dict[str, FieldValue], error: str
) -> None:
    response = influx.write(encode_line(next(MEASUREMENTS), tags, fields, BASE_NS))
    assert response.status_code == 400
    assert error in response.text


def written_or_refused(
    influx: Influx, measurement: str, tags: dict[str, str], fields: dict[str, FieldValue]
) -> None:
    """The encoder refuses the point, or influxd stores it exactly."""
    try:
        line = encode_line(measurement, tags, fields, BASE_NS)
    except LineProtocolError:
        return
    response = influx.write(line)
    assert response.status_code == 204, (line, response.text)
    names = [row[0] for s in influx.query("SHOW MEASUREMENTS") for row in s["values"]]
    assert measurement in names, (line, names)
    point = influx.point(measurement)
    assert point is not None
    assert point[0] == tags
    assert point[1] == fields


@pytest.mark.parametrize("key", ["f\\ g", "f\\,g", "f\\=g", 'f\\"g'])
def test_field_key_with_backslash_before_an_escaped_character(influx: Influx, key: str) -> None:
    written_or_refused(influx, next(MEASUREMENTS), {"t": "x"}, {key: 1.0})


@pytest.mark.parametrize("measurement", ["#rt_comment", "rt\\ x", "rt\\,x", "rt\\=x", 'rt\\"x'])
def test_measurement_names_influxd_would_mangle(influx: Influx, measurement: str) -> None:
    written_or_refused(influx, measurement, {"t": "x"}, {"f": 1.0})
