"""Device messages exactly as real senders publish them: pure, one reading in, bytes out.

Four formats, as the registry names them:

* ``native``: Siaga's own JSON, ``{"ts": <epoch ms>, "seq": n, "<metric>": value, ...}`` on
  ``<prefix>/<station>/telemetry``, or an array of those (a logger's backlog).
* ``senml``: an RFC 8428 pack, ``[{"bn": "urn:dev:...:", "bt": <epoch s>, "n": "level",
  "u": "m", "v": 1.82}, {"n": "battery", "u": "V", "v": 3.9}]``, on the native topic. Names and
  units come from the device profile (``level`` in metres fills ``water_level_cm``).
* ``ttn``: The Things Stack v3 uplink on ``v3/{app}[@{tenant}]/devices/{device}/up``, with the
  Dragino DDS75 frame in ``frm_payload`` and the payload formatter's ``decoded_payload``
  (``Bat`` in volts, sometimes ``"3.384 V"``; ``distance`` in mm). Like the server, fields that
  are ``0``, ``""`` or ``false`` are left out (except inside ``decoded_payload``, a free-form
  struct the server passes through).
* ``chirpstack``: a ChirpStack v4 ``up`` event on ``application/{app}/device/{deveui}/event/up``
  (``object`` is the codec's output), and ``status`` events carrying ``batteryLevel``.

Distance sensors report the distance from the sensor down to the water: ``mounting height -
level``, in millimetres.
"""

from __future__ import annotations

import base64
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from devices.errors import ConfigError
from devices.readings import Reason
from devices.registry import Device, DeviceProfile, Integration, Registry
from devices.topics import TopicScheme

NS_PER_MS = 1_000_000
_NAMESPACE = uuid.UUID("5b0e8c1e-3f5a-4d51-9c1c-7a0c2f6d1e3b")
"""Namespace for the deterministic UUIDs of simulated ChirpStack events."""
DDS75_FPORT = 2
AS923_2_FREQUENCIES_HZ = (921_400_000, 921_600_000, 921_800_000, 922_000_000)
"""Indonesia uses the AS923-2 channel plan."""


class EncodingError(ConfigError, ValueError):
    """A station or device that cannot be simulated as configured."""


@dataclass(frozen=True, slots=True)
class Sender:
    """Who publishes a station's readings, in which format, on which topic, as which account.

    Attributes:
        station: The station id.
        format: ``native``, ``senml``, ``ttn`` or ``chirpstack``.
        topic: Where its messages go.
        account: The MQTT user name to publish as (the device for native and SenML, the
            network server's integration for LoRaWAN); None for a native station without a
            registered device (anonymous or the run's default account).
        device: The registered device, if any.
        profile: The device's field mapping, if any.
        integration: The network server's account, for LoRaWAN devices.
        mounting_height_cm: The station's sensor height, for distance sensors.
    """

    station: str
    format: str
    topic: str
    account: str | None
    device: Device | None = None
    profile: DeviceProfile | None = None
    integration: Integration | None = None
    mounting_height_cm: float | None = None


def resolve_sender(registry: Registry, station_id: str, topics: TopicScheme) -> Sender:
    """The sender of a station's readings according to the registry.

    A station's direct device (native or SenML) wins; otherwise its LoRaWAN device, published by
    the integration account of its application; otherwise it is a native station without a
    device entry.

    Raises:
        EncodingError: Unknown station, revoked device, or a LoRaWAN device without an
            integration for its application.
    """
    station = registry.get(station_id)
    if station is None:
        raise EncodingError(f"station {station_id!r} is not in the registry")
    resolved = registry.for_station_topic(station_id)
    direct = resolved.device if resolved is not None else None
    candidates = [d for d in registry.devices.values() if d.station == station_id]
    device = direct or next((d for d in candidates if d.format in {"ttn", "chirpstack"}), None)
    if device is None:
        return Sender(station_id, "native", topics.telemetry(station_id), None)
    if device.revoked:
        raise EncodingError(f"device {device.id!r} of station {station_id!r} is revoked")
    profile = registry.profiles.get(device.profile) if device.profile else None
    height = station.mounting_height_cm
    if device.format in {"native", "senml"}:
        return Sender(
            station_id, device.format, topics.telemetry(station_id), device.id, device, profile
        )
    assert device.lorawan is not None  # the registry refuses LoRaWAN devices without ids
    ids = device.lorawan
    integration = next(
        (
            i
            for i in registry.integrations.values()
            if i.kind == device.format and i.application_id == ids.application_id and not i.revoked
        ),
        None,
    )
    if integration is None:
        raise EncodingError(
            f"device {device.id!r}: no {device.format} integration publishes for application "
            f"{ids.application_id!r}"
        )
    if device.format == "ttn":
        tenant = ids.tenant_id or integration.tenant_id
        application = f"{ids.application_id}@{tenant}" if tenant else ids.application_id
        topic = f"v3/{application}/devices/{ids.device_id}/up"
    else:
        assert ids.dev_eui is not None
        topic = f"application/{ids.application_id}/device/{ids.dev_eui.lower()}/event/up"
    return Sender(
        station_id, device.format, topic, integration.id, device, profile, integration, height
    )


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """One report of a device, before encoding.

    Attributes:
        station: The station it measures.
        ts_ms: The time it carries, epoch milliseconds.
        values: Metric → value in the station's units (``water_level_cm``, ``battery_v``, ...).
        seq: The device's counter (native ``seq``, LoRaWAN frame counter); None: not sent
            (native only; LoRaWAN frames always have one, 0 then).
        battery_text: Send the battery as text (``"3.384 V"``), as some payload formatters do.
    """

    station: str
    ts_ms: int
    values: Mapping[str, float]
    seq: int | None = 0
    battery_text: bool = False

    @property
    def counter(self) -> int:
        """The frame counter: ``seq``, or 0 without one."""
        return self.seq or 0


@dataclass(frozen=True, slots=True)
class Encoded:
    """A message ready to publish.

    Attributes:
        topic: Where to publish it.
        payload: Its bytes.
        account: The MQTT account to publish as (None: the default connection).
        stored: The ``(station, ts_ns)`` of each reading the ingest side will store from it.
        rejections: Reasons the ingest side will reject parts of it with (a distance sensor
            whose water is in its blind zone reports ``sensor_fault``, its battery is kept).
    """

    topic: str
    payload: bytes
    account: str | None
    stored: tuple[tuple[str, int], ...]
    rejections: tuple[str, ...] = ()


def encode(reading: DeviceReading, sender: Sender) -> Encoded:
    """Encode one reading in its sender's format."""
    if sender.format == "native":
        return encode_native([reading], sender)
    if sender.format == "senml":
        return encode_senml(reading, sender)
    if sender.format == "ttn":
        return encode_ttn(reading, sender)
    if sender.format == "chirpstack":
        return encode_chirpstack(reading, sender)
    raise EncodingError(f"unknown payload format {sender.format!r}")


def native_document(reading: DeviceReading, claim_station: str | None = None) -> dict[str, Any]:
    """A native reading object; ``claim_station`` adds a ``station`` field naming it."""
    document: dict[str, Any] = {"ts": reading.ts_ms}
    if reading.seq is not None:
        document["seq"] = reading.seq
    if claim_station is not None:
        document["station"] = claim_station
    document.update({name: _number(value) for name, value in reading.values.items()})
    return document


def encode_native(
    readings: Sequence[DeviceReading], sender: Sender, *, topic: str | None = None
) -> Encoded:
    """A native message: one object, or an array for several readings (a logger's backlog).

    Args:
        readings: What to send, in the order given (a backlog may be out of order).
        sender: The station's sender.
        topic: Publish elsewhere than the sender's topic (a spoofing device).
    """
    if not readings:
        raise EncodingError("a native message needs at least one reading")
    documents = [native_document(r) for r in readings]
    body: Any = documents[0] if len(documents) == 1 else documents
    stored = tuple((r.station, r.ts_ms * NS_PER_MS) for r in readings)
    return Encoded(topic or sender.topic, orjson.dumps(body), sender.account, stored)


def encode_senml(reading: DeviceReading, sender: Sender) -> Encoded:
    """A SenML pack with base name and base time (whole seconds) and one record per field."""
    if sender.profile is None or sender.device is None:
        raise EncodingError(f"SenML station {sender.station!r} needs a device with a profile")
    records: list[dict[str, Any]] = []
    for source, target in sender.profile.fields.items():
        value = reading.values.get(target.metric)
        if value is None or target.kind != "value":
            continue
        unit = target.unit or _station_unit(target.metric)
        records.append({"n": source, "u": unit, "v": _number(_from_station_unit(value, unit))})
    if not records:
        raise EncodingError(f"SenML device {sender.device.id!r}: no profile field has a value")
    seconds = round(reading.ts_ms / 1000)
    records[0] = {"bn": f"urn:dev:os:siaga-{sender.device.id}:", "bt": seconds, **records[0]}
    stored = ((reading.station, seconds * 1_000_000_000),)
    return Encoded(sender.topic, orjson.dumps(records), sender.account, stored)


def _station_unit(metric: str) -> str:
    return {"water_level_cm": "cm", "battery_v": "V", "rain_mm": "mm"}.get(metric, "")


_STATION_UNIT_PER_UNIT = {"m": 100.0, "mm": 0.1, "mV": 1e-3}
"""How many station units (cm, V) one device unit is."""


def _from_station_unit(value: float, unit: str) -> float:
    """Express a station-unit value (cm, V) in the unit the device sends."""
    return round(value / _STATION_UNIT_PER_UNIT.get(unit, 1.0), 6)


def rfc3339(ts_ms: int) -> str:
    """Epoch milliseconds as the network servers write time: RFC 3339, nanosecond digits, Z."""
    moment = datetime.fromtimestamp(ts_ms // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ts_ms % 1000:03d}000000Z"


def distance_mm(level_cm: float, mounting_height_cm: float) -> int:
    """What a distance sensor measures for a level: whole millimetres down to the water."""
    return round((mounting_height_cm - level_cm) * 10)


def dds75_frame(battery_v: float, distance: int) -> bytes:
    """The Dragino DDS75 uplink frame (FPort 2): battery mV, distance mm, interrupt flag,
    DS18B20 temperature (0: no probe) and sensor flag, big-endian."""
    return struct.pack(">HHBhB", round(battery_v * 1000), min(distance, 0xFFFF), 0, 0, 1)


def _dds75_fields(
    reading: DeviceReading, sender: Sender
) -> tuple[dict[str, Any], bytes, tuple[str, ...]]:
    """The payload formatter's output, the raw frame, and the rejections the distance causes.

    Water within the sensor's blind zone (or above the sensor) cannot be measured: the DDS75
    then reports a distance under its minimum, which Siaga rejects as ``sensor_fault``.
    """
    if sender.mounting_height_cm is None:
        raise EncodingError(f"station {sender.station!r} needs mounting_height_cm")
    level = reading.values.get("water_level_cm")
    battery = reading.values.get("battery_v", 0.0)
    distance = 0 if level is None else max(distance_mm(level, sender.mounting_height_cm), 0)
    decoded: dict[str, Any] = {}
    rejections: tuple[str, ...] = ()
    profile = sender.profile
    for source, target in (profile.fields if profile is not None else {}).items():
        if target.metric == "battery_v":
            decoded[source] = f"{battery:.3f} V" if reading.battery_text else round(battery, 3)
        elif target.kind == "distance" and level is not None:
            decoded[source] = distance
            assert profile is not None
            blind_mm = profile.distance_min_valid_mm
            if distance == profile.distance_absent_mm or (
                blind_mm is not None and distance < blind_mm
            ):
                rejections = (Reason.SENSOR_FAULT.value,)
    return decoded, dds75_frame(battery, distance), rejections


def _gateway(sender: Sender, seq: int) -> str:
    # Two gateways near each LoRaWAN station; which one hears an uplink varies.
    return f"siaga-gw-{sender.station}-{seq % 2 + 1}"


def encode_ttn(reading: DeviceReading, sender: Sender) -> Encoded:
    """A The Things Stack v3 uplink message.

    Every time field carries the reading's time, so the stored time is the same whichever one
    a decoder reads.
    """
    device = sender.device
    if device is None or device.lorawan is None:
        raise EncodingError(f"station {sender.station!r} has no LoRaWAN device")
    decoded, frame, rejections = _dds75_fields(reading, sender)
    moment = rfc3339(reading.ts_ms)
    rx: dict[str, Any] = {
        "gateway_ids": {"gateway_id": _gateway(sender, reading.counter)},
        "time": moment,
        "rssi": _number(reading.values.get("rssi_dbm", -110)),
        "channel_rssi": _number(reading.values.get("rssi_dbm", -110)),
        "snr": _number(reading.values.get("snr_db", 0.0)),
        "received_at": moment,
    }
    uplink: dict[str, Any] = {
        "f_port": DDS75_FPORT,
        "f_cnt": reading.counter,
        "frm_payload": base64.b64encode(frame).decode(),
        "rx_metadata": [_omit_empty(rx)],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125_000, "spreading_factor": 10}},
            "coding_rate": "4/5",
            "frequency": str(AS923_2_FREQUENCIES_HZ[reading.counter % 4]),
        },
        "received_at": moment,
        "consumed_airtime": "0.370688s",
    }
    uplink = _omit_empty(uplink)
    uplink["decoded_payload"] = decoded  # a struct: its zeros are data, kept as they are
    ids: dict[str, Any] = {
        "device_id": device.lorawan.device_id,
        "application_ids": {"application_id": device.lorawan.application_id},
        "dev_eui": device.lorawan.dev_eui,
    }
    document = {
        "end_device_ids": _omit_empty(ids),
        "correlation_ids": [f"as:up:{_uuid(sender, reading.counter, 'tts').hex.upper()[:26]}"],
        "received_at": moment,
        "uplink_message": uplink,
    }
    stored = ((reading.station, reading.ts_ms * NS_PER_MS),)
    return Encoded(sender.topic, orjson.dumps(document), sender.account, stored, rejections)


def _device_info(sender: Sender) -> dict[str, Any]:
    device = sender.device
    assert device is not None
    assert device.lorawan is not None
    ids = device.lorawan
    assert ids.dev_eui is not None
    tenant = ids.tenant_id or (sender.integration.tenant_id if sender.integration else None)
    return {
        "tenantId": tenant or str(uuid.uuid5(_NAMESPACE, f"tenant:{ids.application_id}")),
        "tenantName": "Siaga",
        "applicationId": ids.application_id,
        "applicationName": f"siaga-{sender.station}",
        "deviceProfileId": str(uuid.uuid5(_NAMESPACE, f"profile:{device.profile}")),
        "deviceProfileName": device.profile or "",
        "deviceName": device.id,
        "devEui": ids.dev_eui.lower(),
        "deviceClassEnabled": "CLASS_A",
        "tags": {"station": sender.station},
    }


def _uuid(sender: Sender, seq: int, kind: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{kind}:{sender.station}:{seq}")


def encode_chirpstack(reading: DeviceReading, sender: Sender) -> Encoded:
    """A ChirpStack v4 ``up`` event (the device profile's codec fills ``object``)."""
    if sender.device is None or sender.device.lorawan is None:
        raise EncodingError(f"station {sender.station!r} has no LoRaWAN device")
    decoded, frame, rejections = _dds75_fields(reading, sender)
    moment = rfc3339(reading.ts_ms)
    document = {
        "deduplicationId": str(_uuid(sender, reading.counter, "up")),
        "time": moment,
        "deviceInfo": _device_info(sender),
        "devAddr": f"{_uuid(sender, 0, 'addr').int % 2**32:08x}",
        "adr": True,
        "dr": 2,
        "fCnt": reading.counter,
        "fPort": DDS75_FPORT,
        "confirmed": False,
        "data": base64.b64encode(frame).decode(),
        "object": decoded,
        "rxInfo": [
            {
                "gatewayId": f"{_uuid(sender, reading.counter % 2, 'gw').int % 2**64:016x}",
                "uplinkId": _uuid(sender, reading.counter, "uplink").int % 2**16,
                "nsTime": moment,
                "rssi": int(reading.values.get("rssi_dbm", -110)),
                "snr": _number(reading.values.get("snr_db", 0.0)),
                "channel": reading.counter % 4,
                "context": base64.b64encode(reading.counter.to_bytes(4, "big")).decode(),
                "crcStatus": "CRC_OK",
            }
        ],
        "txInfo": {
            "frequency": AS923_2_FREQUENCIES_HZ[reading.counter % 4],
            "modulation": {
                "lora": {"bandwidth": 125_000, "spreadingFactor": 10, "codeRate": "CR_4_5"}
            },
        },
    }
    stored = ((reading.station, reading.ts_ms * NS_PER_MS),)
    return Encoded(sender.topic, orjson.dumps(document), sender.account, stored, rejections)


def encode_chirpstack_status(
    sender: Sender, ts_ms: int, battery_pct: float, margin_db: int, seq: int
) -> Encoded:
    """A ChirpStack v4 ``status`` event (the device's answer to a DevStatusReq).

    The simulator sends it at the time of an ``up`` event of the same device: its battery level
    joins that reading (same station and time), so the set of stored readings is unchanged.
    """
    document = {
        "deduplicationId": str(_uuid(sender, seq, "status")),
        "time": rfc3339(ts_ms),
        "deviceInfo": _device_info(sender),
        "margin": margin_db,
        "externalPowerSource": False,
        "batteryLevelUnavailable": False,
        "batteryLevel": round(battery_pct, 2),
    }
    topic = sender.topic.rsplit("/", 1)[0] + "/status"
    stored = ((sender.station, ts_ms * NS_PER_MS),)
    return Encoded(topic, orjson.dumps(document), sender.account, stored)


def _number(value: float) -> float | int:
    """Whole numbers as JSON integers (as devices send them), others as floats."""
    as_float = float(value)
    return int(as_float) if as_float.is_integer() and abs(as_float) < 2**53 else as_float


def _omit_empty(document: dict[str, Any]) -> dict[str, Any]:
    """Drop ``0``, ``""``, ``false``, empty lists and mappings, recursively (protobuf JSON)."""
    result: dict[str, Any] = {}
    for key, raw in document.items():
        value = _omit_empty(raw) if isinstance(raw, dict) else raw
        if value in (0, "", False, None, [], {}):
            continue
        result[key] = value
    return result
