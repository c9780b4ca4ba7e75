"""ChirpStack events (v4 JSON, and v3 names where they differ) from its MQTT integration.

``application/{application}/device/{dev_eui}/event/{event}``; two events carry readings:

- ``up``: ``time``, ``deviceInfo{applicationId, devEui, ...}``, ``fCnt``, ``data`` and ``object``
  (only when the device profile on ChirpStack has a codec), ``rxInfo[{rssi, snr}]``. Values come
  from ``object`` through the device profile, RSSI/SNR from the best gateway reception when the
  station records them.
- ``status``: ``batteryLevel`` (percent) and ``margin`` (dB), read through the profile's
  ``batteryLevel`` and ``margin`` fields.

ChirpStack v3 named things ``devEUI`` (hex, or base64 in its protobuf JSON), ``applicationID``,
``objectJSON`` (the object as a string), ``loRaSNR`` and ``publishedAt``; those are read too.
Zero values may be omitted (protobuf JSON mapping): a missing ``fCnt`` is 0, a missing
``margin`` 0 dB, a missing SNR of a LoRa reception 0 dB.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from devices.formats.context import DecodeContext
from devices.formats.mapping import apply_profile, rfc3339_field, signal_values
from devices.formats.native import json_object, json_type, reject_whole
from devices.readings import Decoded, Reading, Reason, Rejection

_HEX_EUI = re.compile(r"[0-9A-Fa-f]{16}")
STATUS_FIELDS = ("batteryLevel", "margin")
"""The source names a device profile maps a status event's values from."""


def decode_chirpstack(payload: bytes, context: DecodeContext) -> Decoded:
    """Decode a ChirpStack ``up`` or ``status`` event.

    Args:
        payload: The message body (JSON).
        context: The sender; ``route.event`` names the event, ``route.key`` the DevEUI and
            ``route.application_id`` the application of the topic.

    Returns:
        One reading, or the rejections that explain why there is none. A value that cannot be
        used is rejected alone; the others are kept.
    """
    station_id = context.station.id
    event = context.route.event
    if event not in {"up", "status"}:
        return reject_whole(
            Reason.BAD_SHAPE, f"ChirpStack {str(event)[:20]!r} events carry no readings", station_id
        )
    document = json_object(payload, station_id, "a ChirpStack event")
    if isinstance(document, Decoded):
        return document
    rejection = _identity_problem(document, context)
    if rejection is not None:
        return Decoded([], [rejection])
    ts_ns = _event_ns(document, station_id)
    if isinstance(ts_ns, Rejection):
        return Decoded([], [ts_ns])
    if event == "up":
        return _up(document, ts_ns, context)
    return _status(document, ts_ns, context)


def _up(document: dict[str, Any], ts_ns: int, context: DecodeContext) -> Decoded:
    station_id = context.station.id
    f_cnt = document.get("fCnt", 0)
    if type(f_cnt) is not int or f_cnt < 0:
        return reject_whole(Reason.WRONG_TYPE, "fCnt must be a non-negative integer", station_id)
    decoded = _object(document, station_id)
    if isinstance(decoded, Rejection):
        return Decoded([], [decoded])
    values, rejections = apply_profile(decoded, context, "")
    if not values:
        if not rejections:
            fields = sorted(context.profile.fields) if context.profile else []
            rejections.append(
                Rejection(
                    Reason.NO_METRICS,
                    "object has none of the fields this device's profile reads "
                    f"({', '.join(fields)})",
                    station_id,
                )
            )
        return Decoded([], rejections)
    tx_info = document.get("txInfo")
    modulation = tx_info.get("modulation") if isinstance(tx_info, dict) else None
    lora = (isinstance(modulation, dict) and isinstance(modulation.get("lora"), dict)) or (
        modulation == "LORA"
    )
    signal, signal_problems = signal_values(
        document.get("rxInfo"), context, snr_keys=("snr", "loRaSNR"), snr_zero_when_absent=lora
    )
    for metric, value in signal.items():
        values.setdefault(metric, value)
    rejections.extend(signal_problems)
    return Decoded([Reading(station_id, ts_ns, values, f_cnt)], rejections)


def _object(document: dict[str, Any], station_id: str) -> dict[str, Any] | Rejection:
    decoded = document.get("object")
    if decoded is None:
        text = document.get("objectJSON")
        if isinstance(text, str) and text:
            try:
                decoded = orjson.loads(text)
            except orjson.JSONDecodeError:
                return Rejection(Reason.UNDECODABLE, "objectJSON is not valid JSON", station_id)
    if decoded is None:
        return Rejection(
            Reason.UNDECODABLE,
            "uplink has no object: no codec configured in the device profile on ChirpStack",
            station_id,
        )
    if not isinstance(decoded, dict):
        return Rejection(
            Reason.BAD_SHAPE, f"object must be a JSON object, got {json_type(decoded)}", station_id
        )
    return decoded


def _status(document: dict[str, Any], ts_ns: int, context: DecodeContext) -> Decoded:
    station_id = context.station.id
    fields = context.profile.fields if context.profile is not None else {}
    mapped = [name for name in STATUS_FIELDS if name in fields]
    if not mapped:
        return reject_whole(
            Reason.NO_METRICS, "status event carries nothing this station records", station_id
        )
    source: dict[str, Any] = {"margin": document.get("margin", 0)}
    if document.get("externalPowerSource") is True:
        missing_battery = "the device runs on external power"
    elif document.get("batteryLevelUnavailable") is True:
        missing_battery = "the device could not measure its battery level"
    elif "batteryLevel" not in document:
        missing_battery = "the event has no batteryLevel"
    else:
        source["batteryLevel"] = document["batteryLevel"]
        missing_battery = ""
    values, rejections = apply_profile(source, context, "")
    if not values and not rejections:
        rejections.append(
            Rejection(
                Reason.NO_METRICS,
                f"status event has no battery level: {missing_battery}",
                station_id,
            )
        )
    readings = [Reading(station_id, ts_ns, values)] if values else []
    return Decoded(readings, rejections)


def _identity_problem(document: dict[str, Any], context: DecodeContext) -> Rejection | None:
    station_id = context.station.id
    device_info = document.get("deviceInfo")
    if isinstance(device_info, dict):
        dev_eui: Any = device_info.get("devEui")
        application_id: Any = device_info.get("applicationId")
    else:
        dev_eui = _v3_eui(document.get("devEUI"))
        application_id = document.get("applicationID")
    if not isinstance(dev_eui, str) or not _HEX_EUI.fullmatch(dev_eui):
        return Rejection(
            Reason.BAD_SHAPE, "event must name the device: deviceInfo.devEui", station_id
        )
    route = context.route
    if dev_eui.upper() != route.key.upper():
        return Rejection(
            Reason.STATION_MISMATCH,
            f"event is from device {dev_eui!r} but was published on the topic of {route.key!r}",
            station_id,
        )
    if (
        isinstance(application_id, str)
        and route.application_id is not None
        and application_id != route.application_id
    ):
        return Rejection(
            Reason.STATION_MISMATCH,
            f"event is from application {application_id[:100]!r} but was published on the "
            f"topic of application {route.application_id!r}",
            station_id,
        )
    return None


def _v3_eui(value: Any) -> str | None:
    """A v3 ``devEUI``: hex in its legacy JSON, base64 of the 8 bytes in its protobuf JSON."""
    if not isinstance(value, str) or len(value) > 24:
        return None
    if _HEX_EUI.fullmatch(value):
        return value
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex().upper() if len(raw) == 8 else None


def _event_ns(document: dict[str, Any], station_id: str) -> int | Rejection:
    label = "time" if "time" in document else "publishedAt"  # v4, else v3
    value = document.get(label)
    return rfc3339_field(value, label if value is not None else "time", "event", station_id)
