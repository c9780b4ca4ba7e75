"""Time zones of places from the shipped province outlines (pure)."""

from __future__ import annotations

import pytest

from dashboards.web.zones import (
    WIB,
    WIT,
    WITA,
    Province,
    province_at,
    shipped_provinces,
    zone_at,
    zone_by_longitude,
)


@pytest.mark.parametrize(
    ("place", "latitude", "longitude", "province", "zone"),
    [
        ("Tanjung, Tabalong", -2.164, 115.383, "Kalimantan Selatan", WITA),
        ("Palangka Raya (west of Tabalong, yet WIB)", -2.21, 113.92, "Kalimantan Tengah", WIB),
        ("Menggala, Tulang Bawang", -4.4711, 105.2426, "Lampung", WIB),
        ("Manggarai, Jakarta", -6.208, 106.848, "Jakarta Raya", WIB),
        ("Jember", -8.1724, 113.6995, "Jawa Timur", WIB),
        ("Denpasar", -8.65, 115.22, "Bali", WITA),
        ("Ambon", -3.69, 128.18, "Maluku", WIT),
        ("Jayapura", -2.53, 140.70, "Papua", WIT),
    ],
)
def test_places_keep_their_province_zone(
    place: str, latitude: float, longitude: float, province: str, zone: object
) -> None:
    provinces = shipped_provinces()
    assert province_at(latitude, longitude, provinces) == province, place
    assert zone_at(latitude, longitude, provinces) == zone, place


def test_a_point_just_off_the_coast_takes_the_nearest_province() -> None:
    square = Province("Square", [[[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]])
    assert province_at(0.9, 1.1, [square]) == "Square"  # 0.14° from the corner (1, 1)
    assert province_at(0.5, 3.0, [square]) is None


def test_a_hole_is_outside() -> None:
    shell = [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0], [0.0, 0.0]]
    hole = [[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0], [1.0, 1.0]]
    lake = Province("Ring", [[shell, hole]])
    assert province_at(0.5, 0.5, [lake]) == "Ring"
    assert province_at(2.0, 2.0, [lake]) is None  # in the hole, over 0.5° from any vertex
    assert province_at(2.0, 2.0, [lake, Province("Island", [[hole]])]) == "Island"


def test_outside_every_province_the_nearest_meridian_decides() -> None:
    assert zone_at(0.0, 100.0, []) == WIB
    assert zone_by_longitude(120.0) == WITA
    assert zone_by_longitude(135.0) == WIT
