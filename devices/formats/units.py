"""Quantities as devices send them (``3.384``, ``"3.384 V"``, ``"3384mV"``) and unit conversion.

Unit names are case-sensitive SenML/SI symbols: ``m``, ``cm``, ``mm``, ``V``, ``mV``, ``%``,
``%EL`` (SenML's battery percentage), ``/`` (a ratio, 1 = 100 %), ``dBm``, ``dB`` and ``Cel``.
Within a dimension every unit is a power of ten of the others; a conversion shifts the decimal
point of the number as written, so ``2.281 m`` is ``228.1 cm``, not ``228.10000000000002``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from devices.errors import InputError

MAX_QUANTITY_CHARS = 64
"""Longer strings are refused unread: no device writes a quantity that long."""

_UNITS: dict[str, tuple[str, int]] = {
    "m": ("length", 0),
    "cm": ("length", -2),
    "mm": ("length", -3),
    "V": ("voltage", 0),
    "mV": ("voltage", -3),
    "/": ("ratio", 0),
    "%": ("ratio", -2),
    "%EL": ("ratio", -2),
    "dBm": ("power level", 0),
    "dB": ("level ratio", 0),
    "Cel": ("temperature", 0),
}
"""Unit symbol → (dimension, power of ten of the dimension's base unit)."""

KNOWN_UNITS = frozenset(_UNITS)

_QUANTITY = re.compile(
    r"\s*(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"\s*(?P<unit>[^\s\d+.-]\S*)?\s*",
    re.ASCII,
)


class UnitError(InputError):
    """A value that is not a usable quantity, or units that cannot be converted."""


class NonFiniteError(UnitError):
    """A quantity that is NaN or infinite, or becomes infinite when converted."""


def parse_quantity(value: object, default_unit: str) -> tuple[float, str]:
    """Read a number, or a string of a number and an optional unit.

    Args:
        value: ``3.384``, ``3384``, ``"3.384 V"``, ``"3384mV"``, ``"12.5%"`` or ``"1234"``.
        default_unit: The unit of a bare number or a string without one.

    Returns:
        The value as a float and its unit.

    Raises:
        NonFiniteError: The value is NaN or infinite, or too large for a float.
        UnitError: The value is a boolean, another type, or a string that is not a number with
            an optional known unit.
    """
    if isinstance(value, bool):
        raise UnitError("a boolean is not a quantity")
    if isinstance(value, int | float):
        return _finite(value), default_unit
    if not isinstance(value, str):
        raise UnitError(
            f"expected a number or a string such as '3.384 V', got {type(value).__name__}"
        )
    if len(value) > MAX_QUANTITY_CHARS:
        raise UnitError(f"a quantity string of {len(value)} characters is too long")
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise UnitError(f"{value!r} is not a number with an optional unit")
    unit = match.group("unit")
    if unit is not None and unit not in _UNITS:
        raise UnitError(f"{value!r} has an unknown unit {unit!r}")
    return _finite(float(match.group("number"))), unit or default_unit


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a value between two units of the same dimension.

    Any unit converts to itself, known or not.

    Args:
        value: A finite number.
        from_unit: Its unit.
        to_unit: The unit wanted.

    Returns:
        The value in ``to_unit``.

    Raises:
        UnitError: A unit is unknown, or the two measure different things.
        NonFiniteError: The value is not finite, or overflows when converted.
    """
    value = _finite(value)
    if from_unit == to_unit:
        return value
    source = _UNITS.get(from_unit)
    target = _UNITS.get(to_unit)
    if source is None or target is None:
        unknown = from_unit if source is None else to_unit
        raise UnitError(
            f"unknown unit {unknown[:16]!r} (cannot convert {from_unit[:16]!r} to {to_unit[:16]!r})"
        )
    if source[0] != target[0]:
        raise UnitError(f"cannot convert {from_unit} ({source[0]}) to {to_unit} ({target[0]})")
    converted = float(decimal_of(value).scaleb(source[1] - target[1]))
    if not math.isfinite(converted):
        raise NonFiniteError(f"{value!r} {from_unit} overflows when converted to {to_unit}")
    return converted


def decimal_of(value: float) -> Decimal:
    """The decimal a device meant by a float: its shortest repr, so 2.281 m is 228.1 cm."""
    return Decimal(repr(float(value)))


def _finite(value: float) -> float:
    try:
        number = float(value)
    except OverflowError:
        raise NonFiniteError("the number is too large for a float") from None
    if not math.isfinite(number):
        raise NonFiniteError(f"{number!r} is not a finite number")
    return number
