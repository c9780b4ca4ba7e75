"""Which of Indonesia's three time zones a place keeps, from the province it lies in.

Longitude alone is not enough: Central Kalimantan (WIB) reaches further east than parts of South
Kalimantan (WITA), so Tabalong at 115.4° E is on WITA while Palangka Raya at 113.9° E is on WIB.
The province outlines are the Natural Earth admin-1 polygons the map already ships; the lookup is a
pure point-in-polygon test over them, done once per station.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROVINCES_FILE = Path(__file__).parent / "static" / "vendor" / "naturalearth" / "provinces.geojson"


@dataclass(frozen=True, slots=True)
class Zone:
    """A civil time zone: the IANA name browsers format with, and the name people say."""

    iana: str
    abbreviation: str
    utc_offset_h: int


WIB = Zone("Asia/Jakarta", "WIB", 7)
WITA = Zone("Asia/Makassar", "WITA", 8)
WIT = Zone("Asia/Jayapura", "WIT", 9)

# Natural Earth's admin-1 names (an older edition: Kalimantan Utara is still in Kalimantan Timur,
# and Papua's 2022 split is not drawn; every part keeps the zone of the province it came from).
PROVINCE_ZONES: dict[str, Zone] = {
    **dict.fromkeys(
        (
            "Aceh", "Sumatera Utara", "Sumatera Barat", "Riau", "Kepulauan Riau", "Jambi",
            "Bengkulu", "Sumatera Selatan", "Bangka-Belitung", "Lampung", "Banten",
            "Jakarta Raya", "Jawa Barat", "Jawa Tengah", "Yogyakarta", "Jawa Timur",
            "Kalimantan Barat", "Kalimantan Tengah",
        ),
        WIB,
    ),
    **dict.fromkeys(
        (
            "Kalimantan Selatan", "Kalimantan Timur", "Kalimantan Utara", "Bali",
            "Nusa Tenggara Barat", "Nusa Tenggara Timur", "Sulawesi Utara", "Gorontalo",
            "Sulawesi Tengah", "Sulawesi Barat", "Sulawesi Selatan", "Sulawesi Tenggara",
        ),
        WITA,
    ),
    **dict.fromkeys(("Maluku", "Maluku Utara", "Papua", "Irian Jaya Barat"), WIT),
}  # fmt: skip

Ring = Sequence[Sequence[float]]
Polygon = Sequence[Ring]


@dataclass(frozen=True, slots=True)
class Province:
    """A province's name and outline (lon/lat rings; the first ring of a polygon is its shell)."""

    name: str
    polygons: Sequence[Polygon]


def _inside_ring(lon: float, lat: float, ring: Ring) -> bool:
    inside = False
    previous = ring[-1]
    for point in ring:
        (x1, y1), (x2, y2) = previous, point
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
        previous = point
    return inside


def _inside(lon: float, lat: float, polygon: Polygon) -> bool:
    shell, *holes = polygon
    return _inside_ring(lon, lat, shell) and not any(_inside_ring(lon, lat, hole) for hole in holes)


def _distance2(lon: float, lat: float, polygon: Polygon) -> float:
    return min((x - lon) ** 2 + (y - lat) ** 2 for x, y in polygon[0])


def province_at(latitude: float, longitude: float, provinces: Sequence[Province]) -> str | None:
    """The province containing a point, else the nearest within 0.5° (coasts, small islands)."""
    nearest: tuple[float, str] | None = None
    for province in provinces:
        for polygon in province.polygons:
            if _inside(longitude, latitude, polygon):
                return province.name
            distance = _distance2(longitude, latitude, polygon)
            if nearest is None or distance < nearest[0]:
                nearest = (distance, province.name)
    if nearest is not None and nearest[0] <= 0.5**2:
        return nearest[1]
    return None


def zone_by_longitude(longitude: float) -> Zone:
    """A fallback outside every province: the zone whose meridian is nearest."""
    if longitude < 112.5:  # halfway between the WIB and WITA meridians
        return WIB
    if longitude < 127.5:  # halfway between WITA and WIT
        return WITA
    return WIT


def zone_at(latitude: float, longitude: float, provinces: Sequence[Province]) -> Zone:
    """The time zone kept at a point in Indonesia."""
    province = province_at(latitude, longitude, provinces)
    if province is not None and province in PROVINCE_ZONES:
        return PROVINCE_ZONES[province]
    return zone_by_longitude(longitude)


def parse_provinces(document: str) -> list[Province]:
    """Provinces from a GeoJSON FeatureCollection of (Multi)Polygons with ``properties.name``."""
    provinces = []
    for feature in json.loads(document)["features"]:
        geometry = feature["geometry"]
        polygons = (
            [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        )
        provinces.append(Province(feature["properties"]["name"], polygons))
    return provinces


@cache
def shipped_provinces() -> list[Province]:
    """The provinces shipped with the web UI (read once)."""
    return parse_provinces(PROVINCES_FILE.read_text(encoding="utf-8"))
