"""Indonesia's three time zones, chosen by regency when known, else by longitude.

WIB (UTC+7) covers Sumatra, Java, West and Central Kalimantan; WITA (UTC+8) South, East and
North Kalimantan, Sulawesi, Bali and Nusa Tenggara; WIT (UTC+9) Maluku and Papua. Longitude
alone misplaces the Kalimantan border (Central Kalimantan reaches east of South Kalimantan's
west edge), so regencies near it are named explicitly: Tabalong is WITA.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from devices.stations import Station


@dataclass(frozen=True, slots=True)
class Zone:
    """An Indonesian time zone: its abbreviation and offset."""

    abbreviation: str
    offset_h: int

    @property
    def tzinfo(self) -> timezone:
        """A fixed offset (Indonesia has no daylight saving)."""
        return timezone(timedelta(hours=self.offset_h), self.abbreviation)


WIB = Zone("WIB", 7)
WITA = Zone("WITA", 8)
WIT = Zone("WIT", 9)
ZONES = {zone.abbreviation: zone for zone in (WIB, WITA, WIT)}

# Regencies whose zone longitude would get wrong, or that operators asked to pin.
REGENCY_ZONES: dict[str, Zone] = {
    "Tabalong": WITA,
    "Balangan": WITA,
    "Kotabaru": WITA,
    "Tanah Bumbu": WITA,
    "Barito Timur": WIB,
    "Barito Utara": WIB,
    "Murung Raya": WIB,
}


def zone_for(station: Station | None, overrides: dict[str, str] | None = None) -> Zone:
    """The zone of a station: an override for its regency, the regency table, or longitude."""
    if station is None:
        return WIB
    if overrides and station.regency in overrides:
        return ZONES[overrides[station.regency]]
    if station.regency in REGENCY_ZONES:
        return REGENCY_ZONES[station.regency]
    if station.longitude < 115.0:
        return WIB
    if station.longitude < 126.0:
        return WITA
    return WIT


def local_time(ts_ns: int, zone: Zone) -> str:
    """``2020-09-21 18:10 WIB``: the moment in the station's own zone, to the minute."""
    moment = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).astimezone(zone.tzinfo)
    return f"{moment:%Y-%m-%d %H:%M} {zone.abbreviation}"


def clock_time(ts_ns: int, zone: Zone) -> str:
    """``18:10 WIB``: the short form for SMS."""
    moment = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).astimezone(zone.tzinfo)
    return f"{moment:%H:%M} {zone.abbreviation}"
