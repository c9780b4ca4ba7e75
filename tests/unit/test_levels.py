"""Warning levels: canonical scale, regional labels, versioned thresholds, inclusivity."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from devices.levels import Level, Thresholds, label, level_at, thresholds_at

KATULAMPA = Thresholds(
    waspada_cm=80, siaga_cm=150, awas_cm=200, inclusive=False, scheme="jakarta-gates"
)
MANGGARAI = Thresholds(waspada_cm=750, siaga_cm=850, awas_cm=950, scheme="jakarta-gates")


@pytest.mark.parametrize(
    ("cm", "expected"),
    [
        (0, "Siaga 4"),
        (80, "Siaga 4"),
        (80.1, "Siaga 3"),
        (150, "Siaga 3"),
        (151, "Siaga 2"),
        (200, "Siaga 2"),
        (200.5, "Siaga 1"),
        (400, "Siaga 1"),
    ],
)
def test_katulampa_with_strict_boundaries(cm: float, expected: str) -> None:
    assert label(KATULAMPA.level_of(cm), "jakarta-gates") == expected


@pytest.mark.parametrize(
    ("cm", "level"),
    [(749.9, Level.NORMAL), (750, Level.WASPADA), (850, Level.SIAGA), (950, Level.AWAS)],
)
def test_manggarai_where_the_boundary_belongs_to_the_higher_level(cm: float, level: Level) -> None:
    assert MANGGARAI.level_of(cm) is level


def test_label_schemes_name_the_same_level_differently() -> None:
    assert [label(Level.AWAS, s) for s in ("bnpb", "jakarta-gates", "basin-roman")] == [
        "Awas",
        "Siaga 1",
        "Siaga III",
    ]


def test_a_reading_is_judged_by_the_thresholds_valid_at_its_own_time() -> None:
    old = Thresholds(waspada_cm=100, siaga_cm=200, awas_cm=300)
    new = Thresholds(
        valid_from=datetime(2025, 1, 1, tzinfo=UTC), waspada_cm=50, siaga_cm=120, awas_cm=250
    )
    before = int(datetime(2024, 12, 31, 23, 59, tzinfo=UTC).timestamp()) * 10**9
    after = int(datetime(2025, 1, 1, 0, 1, tzinfo=UTC).timestamp()) * 10**9
    assert thresholds_at([new, old], before) is old
    assert thresholds_at([new, old], after) is new
    assert level_at([old, new], 150, before) is Level.WASPADA
    assert level_at([old, new], 150, after) is Level.SIAGA
    assert level_at([new], 150, before) is None


@pytest.mark.parametrize(
    "values",
    [
        {"waspada_cm": 200, "siaga_cm": 150, "awas_cm": 300},
        {"waspada_cm": 1, "siaga_cm": 2, "awas_cm": 3, "scheme": "martian"},
        {"waspada_cm": 1, "siaga_cm": 2, "awas_cm": 3, "valid_from": "2025-01-01T00:00:00"},
    ],
)
def test_bad_thresholds_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Thresholds.model_validate(values)
