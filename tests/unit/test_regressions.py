"""Bugs found by the integration tier, pinned where they are cheapest to catch."""

from __future__ import annotations

import pytest

from devices import Reading, Reason
from devices.formats import decode_native
from ingest.lineprotocol import LineProtocolError
from ingest.storage.influx import LineEncoder


def test_a_reading_whose_every_metric_is_refused_yields_no_reading() -> None:
    decoded = decode_native(b'{"ts": 1773093600, "water_level_cm": "182"}', "tb-menggala", 10)
    assert decoded.readings == []
    assert [r.reason for r in decoded.rejections] == [Reason.WRONG_TYPE]


def test_the_encoder_refuses_a_reading_without_values() -> None:
    with pytest.raises(LineProtocolError):
        LineEncoder(lambda s: {"station": s}).reading(Reading("s", 1, {}, 5))


def test_encoded_lines_survive_braces_in_tags_and_vary_with_the_fields() -> None:
    encoder = LineEncoder(lambda s: {"station": s, "regency": "R {0} {}", "river": "{!r}"})
    assert encoder.reading(Reading("s", 7, {"a": 1.5, "b": -2.0}, 3)) == (
        "telemetry,regency=R\\ {0}\\ {},river={!r},station=s a=1.5,b=-2.0,seq=3i 7"
    )
    assert encoder.reading(Reading("s", 8, {"b": 0.1})) == (
        "telemetry,regency=R\\ {0}\\ {},river={!r},station=s b=0.1 8"
    )
