"""MQTT topic names of the native device contract: ``<prefix>/<station_id>/telemetry``."""

from __future__ import annotations

import re
from dataclasses import dataclass

STATION_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Station ids are safe as MQTT topic levels, InfluxDB tag values and file names."""

TELEMETRY_SUFFIX = "telemetry"

DEFAULT_PREFIX = "siaga"
"""The topics' first level unless configured otherwise (``mqtt.topic_prefix``)."""


@dataclass(frozen=True, slots=True)
class TopicScheme:
    """Builds and parses the telemetry topics under one prefix.

    Args:
        prefix: The first topic level(s), without trailing slash, e.g. ``siaga``.
    """

    prefix: str = DEFAULT_PREFIX

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
        if not sep or suffix != TELEMETRY_SUFFIX or not STATION_ID_PATTERN.fullmatch(station_id):
            return None
        return station_id


@dataclass(frozen=True, slots=True)
class Route:
    """What a topic names.

    Attributes:
        kind: ``native`` (``<prefix>/<station>/telemetry``), ``ttn``
            (``v3/<app>[@<tenant>]/devices/<device>/up``) or ``chirpstack``
            (``application/<app>/device/<dev_eui>/event/<event>``).
        key: The station id, the TTS device id, or the DevEUI.
        application_id: The LoRaWAN application, when there is one.
        event: ChirpStack's event name (``up``, ``status``, ...).
    """

    kind: str
    key: str
    application_id: str | None = None
    event: str | None = None


_TTN = re.compile(r"v3/([^/@]{1,100})(?:@([^/]{1,100}))?/devices/([^/]{1,100})/up")
_CHIRPSTACK = re.compile(
    r"^application/([^/]{1,100})/device/([0-9A-Fa-f]{16})/event/([a-z]{1,20})$"
)

LORAWAN_FILTERS = (
    "v3/+/devices/+/up",
    "application/+/device/+/event/up",
    "application/+/device/+/event/status",
)
"""The network servers' topic filters a worker subscribes to besides the native one."""


def parse_route(topic: str, scheme: TopicScheme) -> Route | None:
    """Classify a topic, or None when it is none of the known shapes."""
    station_id = scheme.station_of(topic)
    if station_id is not None:
        return Route("native", station_id)
    match = _TTN.fullmatch(topic)
    if match is not None:
        return Route("ttn", match.group(3), application_id=match.group(1))
    match = _CHIRPSTACK.fullmatch(topic)
    if match is not None:
        return Route("chirpstack", match.group(2).upper(), match.group(1), match.group(3))
    return None
