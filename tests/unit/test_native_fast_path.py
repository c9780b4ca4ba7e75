"""The native decoder's fast path must agree with the general path wherever it answers."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devices.formats.native import decode_document, decode_native, plain_reading

KEYS = st.sampled_from(["ts", "seq", "station", "water_level_cm", "battery_v", "x"]) | st.text(
    max_size=8
)
VALUES = (
    st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
    | st.text(max_size=5)
    | st.lists(st.integers(), max_size=2)
    | st.sampled_from([0, 1, 10**11 - 1, 10**11, 10**14 - 1, 10**14, 9_223_372_036_855, 2**63])
)


@settings(max_examples=1500)
@given(st.dictionaries(KEYS, VALUES, max_size=6))
@example({"ts": 1_773_093_600_000, "seq": 3, "water_level_cm": 182.4})
@example({"ts": 1_773_093_600, "water_level_cm": 1})
@example({"ts": 9_223_372_036_855, "x": 1.0})  # ms beyond int64 nanoseconds
@example({"ts": 1_773_093_600, "seq": 2**63, "x": 1.0})
@example({"ts": 0, "station": 0})  # found by this test: a numeric station key is no metric
def test_the_fast_path_gives_what_the_general_path_gives(document: dict[str, Any]) -> None:
    fast = plain_reading(document, "s1")
    if fast is not None:
        general = decode_document(document, "s1", 1000)
        assert general.rejections == []
        assert general.readings == [fast]


def test_the_fast_path_takes_the_common_payload() -> None:
    document = {"ts": 1_773_093_600_000, "seq": 17, "water_level_cm": 182.4, "rssi_dbm": -97}
    reading = plain_reading(document, "s1")
    assert reading is not None
    assert reading.values == {"water_level_cm": 182.4, "rssi_dbm": -97.0}
    assert decode_native(orjson.dumps(document), "s1", 10).readings == [reading]


def test_anything_unusual_goes_to_the_general_path() -> None:
    for document in (
        {"ts": "2026-03-10T05:00:00Z", "x": 1.0},  # RFC 3339
        {"ts": 1_773_093_600_000, "x": "1"},  # a string value: needs a reason
        {"ts": 1_773_093_600_000, "station": "s1", "x": 1.0},  # station key: must be checked
        {"ts": 1_773_093_600_000},  # no metrics: needs a reason
        {"ts": True, "x": 1.0},
    ):
        assert plain_reading(document, "s1") is None
