"""Quantities and unit conversion: what devices write, what stations want."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.formats.units import (
    KNOWN_UNITS,
    MAX_QUANTITY_CHARS,
    NonFiniteError,
    UnitError,
    convert,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("value", "default_unit", "expected"),
    [
        (3.384, "V", (3.384, "V")),
        (3384, "mV", (3384.0, "mV")),
        (-71, "dBm", (-71.0, "dBm")),
        ("3.384 V", "mV", (3.384, "V")),
        ("3384mV", "V", (3384.0, "mV")),
        ("1234 mm", "cm", (1234.0, "mm")),
        ("12.5%", "%", (12.5, "%")),
        ("  -71 dBm ", "dB", (-71.0, "dBm")),
        ("1234", "mm", (1234.0, "mm")),
        ("1.5e3 mm", "cm", (1500.0, "mm")),
        (".5 m", "cm", (0.5, "m")),
        ("+2. cm", "cm", (2.0, "cm")),
        ("24.5 Cel", "Cel", (24.5, "Cel")),
        ("98 %EL", "%", (98.0, "%EL")),
        ("0.87 /", "%", (0.87, "/")),
        ("6.5 dB", "dB", (6.5, "dB")),
    ],
)
def test_parse_quantity(value: object, default_unit: str, expected: tuple[float, str]) -> None:
    number, unit = parse_quantity(value, default_unit)
    assert (number, unit) == expected
    assert type(number) is float


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "a boolean is not a quantity"),
        (False, "a boolean is not a quantity"),
        (None, "expected a number or a string such as '3.384 V', got NoneType"),
        ([1], "expected a number or a string such as '3.384 V', got list"),
        ({"v": 1}, "expected a number or a string such as '3.384 V', got dict"),
        ("", "'' is not a number with an optional unit"),
        ("V", "'V' is not a number with an optional unit"),
        ("3.384 V V", "'3.384 V V' is not a number with an optional unit"),
        ("nan", "'nan' is not a number with an optional unit"),
        ("Infinity", "'Infinity' is not a number with an optional unit"),
        ("1_000 mm", "'1_000 mm' is not a number with an optional unit"),
        ("1_000mm", "'1_000mm' has an unknown unit '_000mm'"),
        ("3.384 Volt", "'3.384 Volt' has an unknown unit 'Volt'"),
        ("3.384 v", "'3.384 v' has an unknown unit 'v'"),
        ("1,234 mm", "'1,234 mm' is not a number with an optional unit"),
        ("12 M", "'12 M' has an unknown unit 'M'"),
        ("٣ V", "'٣ V' is not a number with an optional unit"),
    ],
)
def test_parse_quantity_refuses(value: object, message: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse_quantity(value, "V")
    assert str(caught.value) == message
    assert not isinstance(caught.value, NonFiniteError)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "1e999 mm", "-1e400", 10**400])
def test_parse_quantity_refuses_non_finite(value: object) -> None:
    with pytest.raises(NonFiniteError):
        parse_quantity(value, "mm")


def test_parse_quantity_refuses_long_strings_unread() -> None:
    text = "1" * (MAX_QUANTITY_CHARS + 1)
    with pytest.raises(UnitError, match="65 characters is too long"):
        parse_quantity(text, "mm")
    assert parse_quantity("1" * MAX_QUANTITY_CHARS, "mm")[1] == "mm"


@pytest.mark.parametrize(
    ("value", "from_unit", "to_unit", "expected"),
    [
        (1234, "mm", "cm", 123.4),
        (1234, "mm", "m", 1.234),
        (2.281, "m", "cm", 228.1),
        (2.315, "m", "mm", 2315.0),
        (123.4, "cm", "mm", 1234.0),
        (3384, "mV", "V", 3.384),
        (3.384, "V", "mV", 3384.0),
        (0.87, "/", "%", 87.0),
        (98, "%EL", "%", 98.0),
        (12.5, "%", "/", 0.125),
        (-97, "dBm", "dBm", -97.0),
        (6.5, "dB", "dB", 6.5),
        (24.5, "Cel", "Cel", 24.5),
        (1.2, "A", "A", 1.2),  # any unit converts to itself, known or not
        (0, "mm", "m", 0.0),
    ],
)
def test_convert_shifts_the_decimal_point_exactly(
    value: float, from_unit: str, to_unit: str, expected: float
) -> None:
    converted = convert(value, from_unit, to_unit)
    assert converted == expected  # exact: 2.281 m is 228.1 cm, not 228.10000000000002
    assert type(converted) is float


@pytest.mark.parametrize(
    ("from_unit", "to_unit", "message"),
    [
        ("V", "cm", "cannot convert V (voltage) to cm (length)"),
        ("mm", "%", "cannot convert mm (length) to % (ratio)"),
        ("dBm", "dB", "cannot convert dBm (power level) to dB (level ratio)"),
        ("Cel", "V", "cannot convert Cel (temperature) to V (voltage)"),
        ("in", "cm", "unknown unit 'in' (cannot convert 'in' to 'cm')"),
        ("cm", "ft", "unknown unit 'ft' (cannot convert 'cm' to 'ft')"),
        ("", "cm", "unknown unit '' (cannot convert '' to 'cm')"),
        ("M", "m", "unknown unit 'M' (cannot convert 'M' to 'm')"),
    ],
)
def test_convert_refuses_other_dimensions_and_unknown_units(
    from_unit: str, to_unit: str, message: str
) -> None:
    with pytest.raises(UnitError) as caught:
        convert(1.0, from_unit, to_unit)
    assert str(caught.value) == message


def test_convert_refuses_non_finite_and_overflow() -> None:
    with pytest.raises(NonFiniteError):
        convert(math.nan, "mm", "mm")
    with pytest.raises(NonFiniteError):
        convert(math.inf, "m", "cm")
    with pytest.raises(NonFiniteError, match="overflows when converted to mm"):
        convert(1e308, "m", "mm")


def test_unit_errors_are_value_errors() -> None:
    assert issubclass(UnitError, ValueError)
    assert issubclass(NonFiniteError, UnitError)


FINITE = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
LENGTHS = st.sampled_from(["m", "cm", "mm"])


@settings(max_examples=200)
@given(FINITE, LENGTHS, LENGTHS)
def test_length_conversion_round_trips(value: float, a: str, b: str) -> None:
    there = convert(value, a, b)
    assert math.isfinite(there)
    assert convert(there, b, a) == pytest.approx(value, rel=1e-15, abs=1e-300)


@settings(max_examples=200)
@given(
    st.one_of(
        st.text(max_size=80),
        st.floats(),
        st.integers(),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    ),
    st.sampled_from(sorted(KNOWN_UNITS)),
)
def test_parse_quantity_only_raises_unit_errors(value: object, default_unit: str) -> None:
    try:
        number, unit = parse_quantity(value, default_unit)
    except UnitError:
        return
    assert math.isfinite(number)
    assert unit == default_unit or unit in KNOWN_UNITS


@settings(max_examples=200)
@given(st.floats(), st.text(max_size=5), st.text(max_size=5))
def test_convert_only_raises_unit_errors(value: float, a: str, b: str) -> None:
    try:
        converted = convert(value, a, b)
    except UnitError:
        return
    assert math.isfinite(converted)
