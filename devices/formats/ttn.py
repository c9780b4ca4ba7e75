"""The Things Stack (v3) uplink messages, as its MQTT server publishes them.

``v3/{application}[@{tenant}]/devices/{device}/up`` carries ``end_device_ids``, ``received_at``
and ``uplink_message`` with ``f_cnt``, ``frm_payload``, ``decoded_payload`` (when a payload
formatter is configured), ``rx_metadata`` and ``settings``. The server omits empty fields (``0``,
``""``, ``false``): a missing ``f_cnt`` is 0, a missing SNR of a LoRa reception is 0 dB.

The reading's time is ``uplink_message.received_at`` (the network server's reception), its
sequence number the frame counter; values come from ``decoded_payload`` through the device
profile, and RSSI/SNR from the best gateway reception when the station records them.
"""

from __future__ import annotations

from typing import Any

from devices.formats.context import DecodeContext
from devices.formats.mapping import apply_profile, rfc3339_field, signal_values
from devices.formats.native import json_object, json_type, reject_whole
from devices.readings import Decoded, Reading, Reason, Rejection

OTHER_MESSAGES = (
    "join_accept",
    "downlink_ack",
    "downlink_nack",
    "downlink_sent",
    "downlink_failed",
    "downlink_queued",
    "downlink_queue_invalidated",
    "location_solved",
    "service_data",
    "uplink_normalized",
)
"""The other message kinds of an ``ApplicationUp``; none carries a reading."""


def decode_ttn(payload: bytes, context: DecodeContext) -> Decoded:
    """Decode a The Things Stack uplink message.

    Args:
        payload: The message body (JSON).
        context: The sender; ``route.key`` is the device id and ``route.application_id`` the
            application named by the topic.

    Returns:
        One reading, or the rejections that explain why there is none. A field of
        ``decoded_payload`` that cannot be used is rejected alone; the others are kept.
    """
    station_id = context.station.id
    document = json_object(payload, station_id, "a The Things Stack message")
    if isinstance(document, Decoded):
        return document
    rejection = _identity_problem(document, context) or _uplink_problem(document, station_id)
    if rejection is not None:
        return Decoded([], [rejection])
    uplink: dict[str, Any] = document["uplink_message"]
    decoded_payload = uplink.get("decoded_payload")
    if decoded_payload is None:
        return reject_whole(
            Reason.UNDECODABLE,
            "uplink has no decoded_payload; configure a payload formatter",
            station_id,
        )
    if not isinstance(decoded_payload, dict):
        return reject_whole(
            Reason.BAD_SHAPE,
            f"decoded_payload must be an object, got {json_type(decoded_payload)}",
            station_id,
        )
    ts_ns = _received_ns(uplink, document, station_id)
    if isinstance(ts_ns, Rejection):
        return Decoded([], [ts_ns])
    f_cnt = uplink.get("f_cnt", 0)
    if type(f_cnt) is not int or f_cnt < 0:
        return reject_whole(
            Reason.WRONG_TYPE, "uplink_message.f_cnt must be a non-negative integer", station_id
        )
    values, rejections = apply_profile(decoded_payload, context, "")
    if not values:
        if not rejections:
            rejections.append(_no_metrics(context))
        return Decoded([], rejections)
    lora = isinstance(_get(uplink, "settings", "data_rate", "lora"), dict)
    signal, signal_problems = signal_values(
        uplink.get("rx_metadata"), context, snr_zero_when_absent=lora
    )
    for metric, value in signal.items():
        values.setdefault(metric, value)
    rejections.extend(signal_problems)
    return Decoded([Reading(station_id, ts_ns, values, f_cnt)], rejections)


def _identity_problem(document: dict[str, Any], context: DecodeContext) -> Rejection | None:
    station_id = context.station.id
    device_id = _get(document, "end_device_ids", "device_id")
    application_id = _get(document, "end_device_ids", "application_ids", "application_id")
    if not isinstance(device_id, str) or not isinstance(application_id, str):
        return Rejection(
            Reason.BAD_SHAPE,
            "end_device_ids must name device_id and application_ids.application_id",
            station_id,
        )
    route = context.route
    expected_application = route.application_id
    if device_id != route.key or (
        expected_application is not None and application_id != expected_application
    ):
        return Rejection(
            Reason.STATION_MISMATCH,
            f"message is from device {device_id[:100]!r} of application "
            f"{application_id[:100]!r} but was published on the topic of device {route.key!r} "
            f"of application {expected_application!r}",
            station_id,
        )
    return None


def _uplink_problem(document: dict[str, Any], station_id: str) -> Rejection | None:
    uplink = document.get("uplink_message")
    if uplink is None:
        kind = next((name for name in OTHER_MESSAGES if name in document), None)
        detail = (
            f"a {kind} message carries no reading"
            if kind is not None
            else "not an uplink message: no uplink_message"
        )
        return Rejection(Reason.BAD_SHAPE, detail, station_id)
    if not isinstance(uplink, dict):
        return Rejection(
            Reason.BAD_SHAPE,
            f"uplink_message must be an object, got {json_type(uplink)}",
            station_id,
        )
    if document.get("simulated") is True:
        # The console's "simulate uplink" must not reach flood warnings as a measurement.
        return Rejection(
            Reason.BAD_SHAPE,
            "simulated uplink (sent from the console), not a measurement",
            station_id,
        )
    return None


def _received_ns(
    uplink: dict[str, Any], document: dict[str, Any], station_id: str
) -> int | Rejection:
    return rfc3339_field(
        uplink.get("received_at", document.get("received_at")), "received_at", "uplink", station_id
    )


def _no_metrics(context: DecodeContext) -> Rejection:
    fields = sorted(context.profile.fields) if context.profile else sorted(context.station.metrics)
    return Rejection(
        Reason.NO_METRICS,
        f"decoded_payload has none of the fields this device's profile reads ({', '.join(fields)})",
        context.station.id,
    )


def _get(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document
