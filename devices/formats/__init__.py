"""Payload formats: one module each, turning a message's bytes into readings.

A decoder is a pure function ``(payload, station_id, max_readings) -> Decoded``; it never raises
for bad input, it returns rejections with reasons instead.
"""

from __future__ import annotations

from collections.abc import Callable

from devices.formats.native import decode_native
from devices.readings import Decoded

Decoder = Callable[[bytes, str, int], Decoded]

DECODERS: dict[str, Decoder] = {"native": decode_native}
"""Payload format name → decoder. Later formats register here."""

__all__ = ["DECODERS", "Decoder", "decode_native"]
