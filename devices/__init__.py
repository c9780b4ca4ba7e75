"""The contract every part of Siaga agrees on, free of I/O.

Readings and rejection reasons, stations and their registry, levels and thresholds, topic
names, payload formats and their decoders, device health, and the root of
the exception tree (:mod:`devices.errors`).
"""

from devices.readings import Decoded, Reading, Reason, Rejection
from devices.stations import (
    MetricSpec,
    StaticRegistry,
    Station,
    StationFileError,
    StationRegistry,
    load_stations,
    parse_stations,
)
from devices.topics import TopicScheme

__all__ = [
    "Decoded",
    "MetricSpec",
    "Reading",
    "Reason",
    "Rejection",
    "StaticRegistry",
    "Station",
    "StationFileError",
    "StationRegistry",
    "TopicScheme",
    "load_stations",
    "parse_stations",
]
