"""Payload formats: one module each, turning a message's bytes into readings.

A decoder is a pure function ``(payload, context) -> Decoded``; it never raises for bad input,
it returns rejections with reasons instead. :data:`DECODERS` maps a device's ``format`` to it.
"""

from __future__ import annotations

from collections.abc import Callable

from devices.formats.chirpstack import decode_chirpstack
from devices.formats.context import DecodeContext
from devices.formats.native import decode_native
from devices.formats.senml import decode_senml
from devices.formats.ttn import decode_ttn
from devices.readings import Decoded

Decoder = Callable[[bytes, DecodeContext], Decoded]


def _native(payload: bytes, context: DecodeContext) -> Decoded:
    return decode_native(payload, context.station.id, context.max_readings)


DECODERS: dict[str, Decoder] = {
    "native": _native,
    "senml": decode_senml,
    "ttn": decode_ttn,
    "chirpstack": decode_chirpstack,
}
"""Payload format name → decoder."""

__all__ = ["DECODERS", "DecodeContext", "Decoder", "decode_native"]
