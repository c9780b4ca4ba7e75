"""MQTT topic names of the native device contract: ``<prefix>/<station_id>/telemetry``."""

from __future__ import annotations

import re
from dataclasses import dataclass

STATION_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Station ids are safe as MQTT topic levels, InfluxDB tag values and file names."""

TELEMETRY_SUFFIX = "telemetry"


@dataclass(frozen=True, slots=True)
class TopicScheme:
    """Builds and parses the telemetry topics under one prefix.

    Args:
        prefix: The first topic level(s), without trailing slash, e.g. ``siaga``.
    """

    prefix: str = "siaga"

    def telemetry(self, station_id: str) -> str:
        """The topic a station publishes its readings on."""
        return f"{self.prefix}/{station_id}/{TELEMETRY_SUFFIX}"

    def subscription(self, shared_group: str | None = None) -> str:
        """The filter a worker subscribes with; a shared subscription when a group is named."""
        pattern = f"{self.prefix}/+/{TELEMETRY_SUFFIX}"
        return f"$share/{shared_group}/{pattern}" if shared_group else pattern

    def station_of(self, topic: str) -> str | None:
        """The station id in a telemetry topic, or None when the topic is not one."""
        head, sep, rest = topic.partition(self.prefix + "/")
        if head or not sep:
            return None
        station_id, sep, suffix = rest.partition("/")
        if not sep or suffix != TELEMETRY_SUFFIX or not STATION_ID_PATTERN.match(station_id):
            return None
        return station_id
