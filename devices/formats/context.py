"""What a decoder knows besides the bytes: who sent them and how to read them."""

from __future__ import annotations

from dataclasses import dataclass

from devices.registry import Device, DeviceProfile
from devices.stations import Station
from devices.topics import Route


@dataclass(frozen=True, slots=True)
class DecodeContext:
    """The resolved sender of a message.

    Attributes:
        station: The station the message speaks for (its metrics, units, mounting height).
        device: The registered device, or None for a native station without a device entry.
        profile: The device's field mapping, when its format needs one.
        route: What the topic named (kind, key, application, event).
        max_readings: The most readings one message may carry.
    """

    station: Station
    device: Device | None
    profile: DeviceProfile | None
    route: Route
    max_readings: int
