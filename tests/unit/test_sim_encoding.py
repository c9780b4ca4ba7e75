"""Encoders speak each format as its own documentation describes, and Siaga's decoders agree."""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import struct
from collections.abc import Callable
from functools import cache

import pytest

from devices.formats import DecodeContext
from devices.formats.native import decode_native
from devices.readings import Decoded
from devices.registry import Registry, load_registry
from devices.topics import TopicScheme, parse_route
from simulators.encoding import (
    DeviceReading,
    Sender,
    dds75_frame,
    distance_mm,
    encode,
    encode_chirpstack_status,
    encode_native,
    resolve_sender,
    rfc3339,
)
from tests.conftest import REPO_ROOT

TS_MS = 1_772_323_200_123  # 2026-03-01T00:00:00.123Z
TOPICS = TopicScheme("siaga")


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


def sender(station: str) -> Sender:
    return resolve_sender(registry(), station, TOPICS)


def decoder(payload_format: str) -> Callable[[bytes, DecodeContext], Decoded]:
    """The format's decoder; the test is skipped only while its module does not exist."""
    module_name = f"devices.formats.{payload_format}"
    if importlib.util.find_spec(module_name) is None:
        pytest.skip(f"{module_name} does not exist yet: nothing to check the encoder against")
    module = importlib.import_module(module_name)
    function: Callable[[bytes, DecodeContext], Decoded] = getattr(
        module, f"decode_{payload_format}"
    )
    return function


def decode(station: str, topic: str, payload: bytes, payload_format: str) -> Decoded:
    resolved = sender(station)
    route = parse_route(topic, TOPICS)
    assert route is not None, topic
    station_model = registry().get(station)
    assert station_model is not None
    context = DecodeContext(station_model, resolved.device, resolved.profile, route, 1000)
    return decoder(payload_format)(payload, context)


def level_reading(station: str, level: float = 182.4, **extra: float) -> DeviceReading:
    values = {"water_level_cm": level, "battery_v": 3.384, "rssi_dbm": -97.0, **extra}
    return DeviceReading(station, TS_MS, values, seq=17)


def test_senders_follow_the_registry() -> None:
    native = sender("tb-menggala")
    assert (native.format, native.topic, native.account) == (
        "native",
        "siaga/tb-menggala/telemetry",
        "gauge-tb-menggala",
    )
    senml = sender("jr-bedadung-kota")
    assert (senml.format, senml.account) == ("senml", "senml-jr-bedadung")
    ttn = sender("tb-dente-teladas")
    assert ttn.topic == "v3/siaga-tulang-bawang@ttn/devices/dds75-dente-teladas/up"
    assert ttn.account == "tts-tulang-bawang"
    chirpstack = sender("rb-lasem")
    assert chirpstack.topic == (
        "application/5d3b6e1c-2f0a-4f7e-9a51-3c7b0b1e9d42/device/a84041000181c7b2/event/up"
    )
    assert chirpstack.account == "chirpstack-rembang"
    assert resolve_sender(registry(), "tb-menggala", TopicScheme("p1")).topic.startswith("p1/")


def test_native_payloads_decode_to_what_was_sampled() -> None:
    reading = level_reading("tb-menggala")
    encoded = encode(reading, sender("tb-menggala"))
    decoded = decode_native(encoded.payload, "tb-menggala", 1000)
    assert not decoded.rejections
    (result,) = decoded.readings
    assert (result.station_id, result.ts_ns, result.seq) == ("tb-menggala", TS_MS * 10**6, 17)
    assert result.values == reading.values
    assert encoded.stored == (("tb-menggala", TS_MS * 10**6),)


def test_a_native_backlog_is_one_array_in_the_order_given() -> None:
    readings = [
        DeviceReading("tb-menggala", TS_MS + i * 900_000, {"water_level_cm": 100.0 + i}, i)
        for i in (3, 1, 2)
    ]
    encoded = encode_native(readings, sender("tb-menggala"))
    decoded = decode_native(encoded.payload, "tb-menggala", 1000)
    assert [r.seq for r in decoded.readings] == [3, 1, 2]
    assert {ts for _, ts in encoded.stored} == {r.ts_ns for r in decoded.readings}


def test_native_without_a_sequence_number_leaves_seq_out() -> None:
    reading = DeviceReading("tb-menggala", TS_MS, {"water_level_cm": 1.5}, seq=None)
    assert json.loads(encode(reading, sender("tb-menggala")).payload) == {
        "ts": TS_MS,
        "water_level_cm": 1.5,
    }


def test_senml_is_a_pack_with_base_name_and_time_in_metres() -> None:
    reading = level_reading("jr-bedadung-kota", 182.0)
    encoded = encode(reading, sender("jr-bedadung-kota"))
    pack = json.loads(encoded.payload)
    assert pack == [
        {
            "bn": "urn:dev:os:siaga-senml-jr-bedadung:",
            "bt": TS_MS // 1000,
            "n": "level",
            "u": "m",
            "v": 1.82,
        },
        {"n": "battery", "u": "V", "v": 3.384},
    ]
    assert encoded.stored == (("jr-bedadung-kota", TS_MS // 1000 * 10**9),)


def test_senml_is_accepted_by_the_senml_decoder() -> None:
    reading = level_reading("jr-bedadung-kota", 182.4)
    encoded = encode(reading, sender("jr-bedadung-kota"))
    decoded = decode("jr-bedadung-kota", encoded.topic, encoded.payload, "senml")
    assert not decoded.rejections
    (result,) = decoded.readings
    assert ("jr-bedadung-kota", result.ts_ns) == encoded.stored[0]
    assert result.values["water_level_cm"] == pytest.approx(182.4)
    assert result.values["battery_v"] == pytest.approx(3.384)


def test_the_things_stack_uplink_has_the_servers_shape() -> None:
    reading = DeviceReading(
        "tb-dente-teladas",
        TS_MS,
        {"water_level_cm": 476.6, "battery_v": 3.384, "rssi_dbm": -97.0, "snr_db": 0.0},
        seq=0,
        battery_text=True,
    )
    encoded = encode(reading, sender("tb-dente-teladas"))
    document = json.loads(encoded.payload)
    assert document["end_device_ids"] == {
        "device_id": "dds75-dente-teladas",
        "application_ids": {"application_id": "siaga-tulang-bawang"},
        "dev_eui": "A84041000181D3E1",
    }
    uplink = document["uplink_message"]
    assert "f_cnt" not in uplink  # 0: omitted, as the server does
    assert "snr" not in uplink["rx_metadata"][0]  # 0.0 dB: omitted too
    assert uplink["decoded_payload"] == {"Bat": "3.384 V", "distance": 1234}
    assert uplink["received_at"] == document["received_at"] == "2026-03-01T00:00:00.123000000Z"
    battery_mv, distance, *_ = struct.unpack(">HHBhB", base64.b64decode(uplink["frm_payload"]))
    assert (battery_mv, distance) == (3384, 1234)
    assert uplink["f_port"] == 2


def test_the_things_stack_uplink_is_accepted_by_the_ttn_decoder() -> None:
    reading = level_reading("tb-dente-teladas", 320.5, snr_db=7.25)
    encoded = encode(reading, sender("tb-dente-teladas"))
    decoded = decode("tb-dente-teladas", encoded.topic, encoded.payload, "ttn")
    assert not decoded.rejections
    (result,) = decoded.readings
    assert ("tb-dente-teladas", result.ts_ns) == encoded.stored[0]
    assert result.values["water_level_cm"] == pytest.approx(320.5)
    assert result.values["battery_v"] == pytest.approx(3.384)
    assert result.values["snr_db"] == 7.25
    assert result.seq == 17


def test_chirpstack_up_has_the_v4_shape() -> None:
    encoded = encode(level_reading("rb-lasem", 163.0), sender("rb-lasem"))
    document = json.loads(encoded.payload)
    assert document["deviceInfo"]["devEui"] == "a84041000181c7b2"
    assert document["deviceInfo"]["applicationId"] == "5d3b6e1c-2f0a-4f7e-9a51-3c7b0b1e9d42"
    assert document["object"] == {"Bat": 3.384, "distance": 2870}
    assert document["fCnt"] == 17
    assert document["time"] == rfc3339(TS_MS)
    assert base64.b64decode(document["data"]) == dds75_frame(3.384, 2870)


def test_chirpstack_up_and_status_are_accepted_by_the_chirpstack_decoder() -> None:
    encoded = encode(level_reading("rb-lasem", 163.0), sender("rb-lasem"))
    decoded = decode("rb-lasem", encoded.topic, encoded.payload, "chirpstack")
    assert not decoded.rejections
    (result,) = decoded.readings
    assert ("rb-lasem", result.ts_ns) == encoded.stored[0]
    assert result.values["water_level_cm"] == pytest.approx(163.0)
    status = encode_chirpstack_status(sender("rb-lasem"), TS_MS, 87.5, 12, 17)
    assert status.topic.endswith("/event/status")
    decoded = decode("rb-lasem", status.topic, status.payload, "chirpstack")
    assert not decoded.rejections
    (battery,) = decoded.readings
    assert (battery.station_id, battery.ts_ns) == status.stored[0] == encoded.stored[0]
    assert battery.values["battery_pct"] == 87.5


def test_encoding_is_deterministic() -> None:
    for station in ("tb-menggala", "jr-bedadung-kota", "tb-dente-teladas", "rb-lasem"):
        reading = level_reading(station)
        assert encode(reading, sender(station)) == encode(reading, sender(station))


def test_distances_are_whole_millimetres_from_the_mounting_height() -> None:
    assert distance_mm(476.6, 600) == 1234
    assert distance_mm(0, 450) == 4500
