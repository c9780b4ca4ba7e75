"""The validator: one message in, readings with only valid metrics and reasoned rejections out."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import MetricSpec, Reading, Reason, Rejection, StaticRegistry, Station, TopicScheme
from devices.formats import DECODERS, DecodeContext
from devices.readings import Decoded
from devices.registry import Device, DeviceProfile, FieldMap, LoRaWANIds, Registry
from devices.topics import Route
from ingest.batch import StoredRejection, excerpt
from ingest.storage.influx import LineEncoder
from ingest.validation import Limits, Outcome, Validator

NOW_S = 1_700_000_000
NOW_NS = NOW_S * 1_000_000_000
S = 1_000_000_000
STATION = "tb-menggala"
TOPIC = f"siaga/{STATION}/telemetry"


def station(station_id: str = STATION) -> Station:
    return Station(
        id=station_id,
        name="Way Tulang Bawang at Menggala",
        regency="Tulang Bawang",
        river="Way Tulang Bawang",
        latitude=-4.4711,
        longitude=105.2426,
        metrics={
            "water_level_cm": MetricSpec(unit="cm", min=0, max=2000),
            "rssi_dbm": MetricSpec(unit="dBm", min=-150, max=0),
        },
    )


REGISTRY = Registry(
    StaticRegistry([station(), station("jr-arjasa"), station("rb-senml"), station("tl-lora")]),
    profiles={"gauge": DeviceProfile(fields={"dist": FieldMap(metric="water_level_cm")})},
    devices=[
        Device(id="senml-1", station="rb-senml", format="senml"),
        Device(id="lora-1", station="tl-lora", format="ttn", profile="gauge",
               lorawan=LoRaWANIds(application_id="siaga-app", device_id="dds75-1")),
    ],
)  # fmt: skip
NATIVE_ONLY = {"native": DECODERS["native"]}
LIMITS = Limits(
    max_payload_bytes=256, max_readings_per_message=5, max_future_s=300, max_age_s=86400
)


def validator(limits: Limits = LIMITS) -> Validator:
    return Validator(REGISTRY, TopicScheme(), limits, decoders=NATIVE_ONLY)


def validate(payload: object, topic: str = TOPIC, limits: Limits = LIMITS) -> Outcome:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return validator(limits).validate(topic, raw, NOW_NS)


def test_valid_message_passes_unchanged() -> None:
    outcome = validate({"ts": NOW_S, "seq": 3, "water_level_cm": 182.4, "rssi_dbm": -71})
    assert outcome.rejections == []
    assert outcome.readings == [
        Reading(STATION, NOW_NS, {"water_level_cm": 182.4, "rssi_dbm": -71.0}, 3)
    ]


@pytest.mark.parametrize(
    "topic",
    ["other/tb-menggala/telemetry", "siaga/tb-menggala/status", "siaga/a/b/telemetry", ""],
)
def test_bad_topic(topic: str) -> None:
    outcome = validate({"ts": NOW_S, "water_level_cm": 1}, topic=topic)
    assert outcome.readings == []
    assert outcome.rejections == [
        Rejection(Reason.BAD_TOPIC, f"topic {topic!r} is not a telemetry topic", None)
    ]


def test_bad_topic_detail_truncates_the_topic() -> None:
    topic = "x" * 300
    [rejection] = validate(b"{}", topic=topic).rejections
    assert rejection.detail == f"topic {'x' * 100!r} is not a telemetry topic"


def test_payload_too_large_is_rejected_unread() -> None:
    limits = Limits(max_payload_bytes=64)
    at_limit = b'{"ts": 1700000000, "water_level_cm": 1}'.ljust(64)
    assert len(at_limit) == 64
    assert validate(at_limit, limits=limits).readings == [
        Reading(STATION, NOW_NS, {"water_level_cm": 1.0})
    ]
    outcome = validate(at_limit + b" ", limits=limits)
    assert outcome.readings == []
    assert outcome.rejections == [
        Rejection(Reason.PAYLOAD_TOO_LARGE, "payload is 65 bytes; the limit is 64", STATION)
    ]


def test_payload_too_large_on_an_unknown_station_does_not_name_it() -> None:
    # Unknown ids must not mint series, whatever else is wrong with the message.
    outcome = validate(b"x" * 300, topic="siaga/made-up-1/telemetry")
    assert outcome.rejections == [
        Rejection(Reason.UNKNOWN_STATION, "station 'made-up-1' is not registered", None)
    ]


def test_unknown_station_keeps_the_claimed_id_out_of_the_station_field() -> None:
    outcome = validate({"ts": NOW_S, "water_level_cm": 1}, topic="siaga/made-up-1/telemetry")
    assert outcome.readings == []
    assert outcome.rejections == [
        Rejection(Reason.UNKNOWN_STATION, "station 'made-up-1' is not registered", None)
    ]


def test_unknown_station_detail_truncates_the_id() -> None:
    [rejection] = validate(b"{}", topic=f"siaga/{'s' * 64}/telemetry").rejections
    assert rejection == Rejection(
        Reason.UNKNOWN_STATION, f"station {'s' * 64!r} is not registered", None
    )


def test_station_with_a_format_without_decoder() -> None:
    outcome = validate({"ts": NOW_S, "water_level_cm": 1}, topic="siaga/rb-senml/telemetry")
    assert outcome.rejections == [
        Rejection(Reason.UNDECODABLE, "no decoder for payload format 'senml'", "rb-senml")
    ]


@pytest.mark.parametrize(
    ("topic", "detail"),
    [
        ("v3/siaga-app/devices/unknown-9/up",
         "ttn device 'unknown-9' of application 'siaga-app' is not registered"),
        ("v3/other-app@tenant/devices/dds75-1/up",
         "ttn device 'dds75-1' of application 'other-app' is not registered"),
        ("application/app-1/device/0011223344556677/event/up",
         "chirpstack device '0011223344556677' of application 'app-1' is not registered"),
    ],
)  # fmt: skip
def test_unknown_lorawan_device(topic: str, detail: str) -> None:
    outcome = validate(b"{}", topic=topic)
    assert outcome.rejections == [Rejection(Reason.UNKNOWN_DEVICE, detail, None)]


def test_decoders_come_from_the_given_table_with_the_resolved_sender() -> None:
    calls: list[tuple[bytes, DecodeContext]] = []

    def ttn(payload: bytes, context: DecodeContext) -> Decoded:
        calls.append((payload, context))
        return Decoded([Reading(context.station.id, NOW_NS, {"rssi_dbm": -90.0})], [])

    checker = Validator(REGISTRY, TopicScheme(), LIMITS, decoders={"ttn": ttn})
    outcome = checker.validate("v3/siaga-app/devices/dds75-1/up", b"\x01\x02", NOW_NS)
    assert outcome.readings == [Reading("tl-lora", NOW_NS, {"rssi_dbm": -90.0})]
    [(payload, context)] = calls
    assert payload == b"\x01\x02"
    assert context.station == station("tl-lora")
    assert context.device == REGISTRY.devices["lora-1"]
    assert context.profile == REGISTRY.profiles["gauge"]
    assert context.route == Route("ttn", "dds75-1", application_id="siaga-app")
    assert context.max_readings == 5
    # The table replaces the default one: native stations have no decoder now.
    assert checker.validate(TOPIC, b"{}", NOW_NS).rejections == [
        Rejection(Reason.UNDECODABLE, "no decoder for payload format 'native'", STATION)
    ]


def test_a_plain_station_registry_is_read_as_native_stations() -> None:
    checker = Validator(StaticRegistry([station()]), TopicScheme(), LIMITS)
    payload = json.dumps({"ts": NOW_S, "water_level_cm": 1}).encode()
    assert checker.validate(TOPIC, payload, NOW_NS).readings == [
        Reading(STATION, NOW_NS, {"water_level_cm": 1.0})
    ]
    assert [s.id for s in checker.registry.stations()] == [STATION]


def test_decoder_rejections_pass_through() -> None:
    outcome = validate(b"{not json")
    assert outcome.readings == []
    assert [r.reason for r in outcome.rejections] == [Reason.INVALID_JSON]
    assert outcome.rejections[0].station_id == STATION


def test_max_readings_per_message_reaches_the_decoder() -> None:
    five = [{"ts": NOW_S - i, "water_level_cm": i} for i in range(5)]
    assert len(validate(five).readings) == 5
    outcome = validate([*five, {"ts": NOW_S, "water_level_cm": 9}])
    assert outcome.readings == []
    assert outcome.rejections == [
        Rejection(Reason.TOO_MANY_READINGS, "6 readings in one message; the limit is 5", STATION)
    ]


def test_unknown_metric_is_dropped_and_the_rest_kept() -> None:
    outcome = validate({"ts": NOW_S, "water_level_cm": 100, "flow_m3s": 3.5})
    assert outcome.readings == [Reading(STATION, NOW_NS, {"water_level_cm": 100.0})]
    assert outcome.rejections == [
        Rejection(Reason.UNKNOWN_METRIC, "'flow_m3s' is not a metric of this station", STATION)
    ]


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        ("water_level_cm", 0),
        ("water_level_cm", 2000),
        ("water_level_cm", 1999.999),
        ("rssi_dbm", -150),
        ("rssi_dbm", 0),
        ("rssi_dbm", -0.0),
    ],
)
def test_range_bounds_are_inclusive(metric: str, value: float) -> None:
    outcome = validate({"ts": NOW_S, metric: value})
    assert outcome.rejections == []
    assert outcome.readings == [Reading(STATION, NOW_NS, {metric: float(value)})]


@pytest.mark.parametrize(
    ("metric", "value", "detail"),
    [
        ("water_level_cm", -0.001, "water_level_cm = -0.001 is outside [0, 2000]"),
        ("water_level_cm", 2000.5, "water_level_cm = 2000.5 is outside [0, 2000]"),
        ("water_level_cm", 1e300, "water_level_cm = 1e+300 is outside [0, 2000]"),
        ("rssi_dbm", 1, "rssi_dbm = 1.0 is outside [-150, 0]"),
        ("rssi_dbm", -150.5, "rssi_dbm = -150.5 is outside [-150, 0]"),
    ],
)
def test_out_of_range(metric: str, value: float, detail: str) -> None:
    outcome = validate({"ts": NOW_S, metric: value, "seq": 1})
    assert outcome.readings == []
    assert outcome.rejections == [Rejection(Reason.OUT_OF_RANGE, detail, STATION)]


def test_partial_keep_of_valid_metrics_keeps_seq_and_time() -> None:
    outcome = validate(
        {"ts": NOW_S, "seq": 9, "water_level_cm": 5000, "rssi_dbm": -80, "colour": 1}
    )
    assert outcome.readings == [Reading(STATION, NOW_NS, {"rssi_dbm": -80.0}, 9)]
    assert [r.reason for r in outcome.rejections] == [Reason.OUT_OF_RANGE, Reason.UNKNOWN_METRIC]


def test_reading_with_every_metric_invalid_yields_no_reading() -> None:
    outcome = validate({"ts": NOW_S, "seq": 9, "water_level_cm": -1, "rssi_dbm": 5, "x": 1})
    assert outcome.readings == []
    assert [r.reason for r in outcome.rejections] == [
        Reason.OUT_OF_RANGE,
        Reason.OUT_OF_RANGE,
        Reason.UNKNOWN_METRIC,
    ]


def test_reading_with_every_metric_of_the_wrong_type_yields_no_reading() -> None:
    outcome = validate({"ts": NOW_S, "water_level_cm": "high"})
    assert outcome.readings == []
    assert [r.reason for r in outcome.rejections] == [Reason.WRONG_TYPE]


def test_timestamp_within_max_future_is_accepted() -> None:
    outcome = validate(
        [
            {"ts": NOW_S + 300, "water_level_cm": 1},  # exactly at the bound
            {"ts": (NOW_S + 300) * 1000, "water_level_cm": 2},  # the same, in milliseconds
        ]
    )
    assert outcome.rejections == []
    assert [r.ts_ns for r in outcome.readings] == [NOW_NS + 300 * S] * 2


def test_timestamp_beyond_max_future_is_rejected() -> None:
    outcome = validate(
        [
            {"ts": NOW_S + 301, "water_level_cm": 1},
            {"ts": (NOW_S + 300) * 1000 + 1, "water_level_cm": 2},  # one millisecond too far
            {"ts": NOW_S, "water_level_cm": 3},
        ]
    )
    assert outcome.readings == [Reading(STATION, NOW_NS, {"water_level_cm": 3.0})]
    assert outcome.rejections == [
        Rejection(Reason.TIMESTAMP_IN_FUTURE, "ts is 1 s beyond the allowed skew", STATION),
        Rejection(Reason.TIMESTAMP_IN_FUTURE, "ts is 0 s beyond the allowed skew", STATION),
    ]


def test_timestamp_age_bound_is_inclusive() -> None:
    outcome = validate(
        [
            {"ts": NOW_S - 86400, "water_level_cm": 1},  # exactly max_age_s old: kept
            {"ts": (NOW_S - 86400) * 1000 - 1, "water_level_cm": 2},  # one millisecond older
        ]
    )
    assert outcome.readings == [Reading(STATION, NOW_NS - 86400 * S, {"water_level_cm": 1.0})]
    assert outcome.rejections == [
        Rejection(Reason.TIMESTAMP_TOO_OLD, "ts is older than the retention window", STATION)
    ]


def test_time_bounds_are_checked_before_metrics() -> None:
    outcome = validate({"ts": 0, "water_level_cm": -5, "unknown": 1})
    assert outcome.rejections == [
        Rejection(Reason.TIMESTAMP_TOO_OLD, "ts is older than the retention window", STATION)
    ]


def test_zero_future_skew() -> None:
    limits = Limits(max_future_s=0, max_age_s=86400)
    assert validate({"ts": NOW_S, "water_level_cm": 1}, limits=limits).rejections == []
    future = validate({"ts": NOW_S * 1000 + 1, "water_level_cm": 1}, limits=limits)
    assert [r.reason for r in future.rejections] == [Reason.TIMESTAMP_IN_FUTURE]


def test_use_registry_switches_the_rules() -> None:
    checker = validator()
    payload = json.dumps({"ts": NOW_S, "water_level_cm": 1}).encode()
    assert checker.validate(TOPIC, payload, NOW_NS).readings  # rules now cached
    narrower = Station(
        **{
            **station().model_dump(),
            "metrics": {"water_level_cm": MetricSpec(unit="cm", min=10, max=20)},
        }
    )
    checker.use_registry(StaticRegistry([narrower]))
    assert [r.reason for r in checker.validate(TOPIC, payload, NOW_NS).rejections] == [
        Reason.OUT_OF_RANGE
    ]
    checker.use_registry(StaticRegistry([]))
    assert [r.reason for r in checker.validate(TOPIC, payload, NOW_NS).rejections] == [
        Reason.UNKNOWN_STATION
    ]


TOPICS = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            TOPIC,
            "siaga/jr-arjasa/telemetry",
            "siaga/rb-senml/telemetry",
            "v3/siaga-app/devices/dds75-1/up",
            "application/app/device/0011223344556677/event/up",
        ]
    ),
    st.from_regex(r"\Asiaga/[A-Za-z0-9_.-]{1,10}\n?/telemetry\Z"),
    st.from_regex(r"\Av3/[a-z@-]{1,12}/devices/[a-z0-9-]{1,10}/up\Z"),
)
PAYLOADS = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.fixed_dictionaries(
            {"ts": st.integers(NOW_S - 2 * 86400, NOW_S + 600) | st.text(max_size=30)},
            optional={
                "water_level_cm": st.floats(-10, 2010) | st.integers() | st.text(max_size=3),
                "rssi_dbm": st.floats(-160, 10),
                "seq": st.integers(-2, 10),
                "other": st.floats(allow_nan=False),
            },
        ),
        max_size=7,
    ).map(lambda items: json.dumps(items).encode()),
)


@settings(max_examples=300)
@given(TOPICS, PAYLOADS)
def test_validate_never_raises(topic: str, payload: bytes) -> None:
    outcome = validator().validate(topic, payload, NOW_NS)
    for reading in outcome.readings:
        spec = REGISTRY.get(reading.station_id)
        assert spec is not None
        assert reading.values
        for name, value in reading.values.items():
            assert spec.metrics[name].min <= value <= spec.metrics[name].max
        assert NOW_NS - 86400 * S <= reading.ts_ns <= NOW_NS + 300 * S
    for rejection in outcome.rejections:
        assert isinstance(rejection.reason, Reason)
        # Only registered stations are ever named: unknown ids must not mint series.
        assert rejection.station_id is None or REGISTRY.get(rejection.station_id) is not None


def test_every_rejection_of_an_oversized_message_can_be_stored() -> None:
    # 'abc\n' once passed the station id pattern ('$' matches before a final newline) and
    # became a station tag that no line can hold, so InfluxStorage.write raised. The topic is
    # refused first, no station is named, and the rejection encodes as one storable line.
    topic = "siaga/abc\n/telemetry"
    outcome = validate(b"x" * 300, topic=topic)
    assert outcome.readings == []
    [rejection] = outcome.rejections
    assert rejection.reason is Reason.BAD_TOPIC
    assert rejection.station_id is None
    encoder = LineEncoder(lambda station_id: {"station": station_id})
    line = encoder.rejection(StoredRejection(rejection, topic, excerpt(b"x" * 300), NOW_NS))
    assert line.startswith("rejected,reason=bad_topic topic=")
    assert line.endswith(f" {NOW_NS}")


def _through_the_decoder(payload: bytes, context: DecodeContext) -> Decoded:
    return DECODERS["native"](payload, context)  # the same decoder, not inlined by validation


_PAYLOAD_KEYS = st.sampled_from(["ts", "seq", "station", "water_level_cm", "rssi_dbm", "x"])
_PAYLOAD_VALUES = (
    st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e4, max_value=1e4)
    | st.sampled_from([NOW_S, NOW_S * 1000, NOW_S + 10_000, NOW_S - 10**6, STATION, None, True])
)


@settings(max_examples=500)
@given(st.dictionaries(_PAYLOAD_KEYS, _PAYLOAD_VALUES, max_size=6) | st.just([]))
def test_the_inlined_native_path_gives_what_the_native_decoder_gives(document: object) -> None:
    raw = json.dumps(document).encode()
    inlined = validator().validate(TOPIC, raw, NOW_NS)
    plain = Validator(REGISTRY, TopicScheme(), LIMITS, decoders={"native": _through_the_decoder})
    assert inlined == plain.validate(TOPIC, raw, NOW_NS)
