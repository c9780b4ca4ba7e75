"""InfluxQL quoting: exact bytes, and no value that escapes its literal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.storage.influx import influxql_equals, quote_influxql


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("tb-menggala", "'tb-menggala'"),
        ("it's", "'it\\'s'"),
        ('say "x"', "'say \\\"x\\\"'"),
        ("back\\slash", "'back\\\\slash'"),
        ("a\nb", "'a\\nb'"),
    ],
)
def test_quoted_literals(value: str, quoted: str) -> None:
    assert quote_influxql(value) == quoted


@pytest.mark.parametrize("value", ["a\rb", "a\r\nb", "a\x00b"])
def test_what_no_literal_can_hold_is_refused_and_matched_by_a_pattern(value: str) -> None:
    with pytest.raises(ValueError, match="CR or NUL"):
        quote_influxql(value)
    condition = influxql_equals("station", value)
    assert condition.startswith('"station" =~ /^a')
    assert not any(c in condition for c in "\r\n\x00")


@given(st.text(max_size=40))
def test_no_value_leaves_its_literal(value: str) -> None:
    condition = influxql_equals("station", value)
    assert not any(c in condition for c in "\r\n\x00")
    if "=~" in condition:
        body = condition.split("/^", 1)[1].removesuffix("$/")
        assert "/" not in body  # the pattern cannot end early
    else:
        literal = condition.split(" = ", 1)[1]
        inner = literal[1:-1]
        # every quote inside is escaped: removing escape pairs leaves no bare quote
        stripped = inner.replace("\\\\", "").replace("\\'", "").replace('\\"', "")
        assert "'" not in stripped
