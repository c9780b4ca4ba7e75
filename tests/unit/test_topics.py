"""Telemetry topic names: built and parsed under one prefix, anything else refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.topics import LORAWAN_FILTERS, STATION_ID_PATTERN, Route, TopicScheme, parse_route


def test_telemetry_topic_is_prefix_station_suffix() -> None:
    assert TopicScheme().telemetry("tb-menggala") == "siaga/tb-menggala/telemetry"
    assert TopicScheme("pemda/lampung").telemetry("tb-menggala") == (
        "pemda/lampung/tb-menggala/telemetry"
    )


def test_subscription_filter_plain_and_shared() -> None:
    scheme = TopicScheme()
    assert scheme.subscription() == "siaga/+/telemetry"
    assert scheme.subscription(None) == "siaga/+/telemetry"
    assert scheme.subscription("") == "siaga/+/telemetry"
    assert scheme.subscription("siaga-ingest") == "$share/siaga-ingest/siaga/+/telemetry"


@pytest.mark.parametrize(
    "station_id", ["tb-menggala", "a", "A1", "x.y_z-9", "9" * 64, "0-leading-digit"]
)
def test_station_of_reads_back_what_telemetry_built(station_id: str) -> None:
    scheme = TopicScheme()
    assert scheme.station_of(scheme.telemetry(station_id)) == station_id


def test_station_of_with_a_multi_level_prefix() -> None:
    scheme = TopicScheme("pemda/lampung")
    assert scheme.station_of("pemda/lampung/tb-menggala/telemetry") == "tb-menggala"
    assert scheme.station_of("pemda/tb-menggala/telemetry") is None
    assert scheme.station_of("lampung/tb-menggala/telemetry") is None


@pytest.mark.parametrize(
    "topic",
    [
        "other/tb-menggala/telemetry",  # wrong prefix
        "siagax/tb-menggala/telemetry",  # prefix only as a substring of the first level
        "xsiaga/tb-menggala/telemetry",
        "/siaga/tb-menggala/telemetry",  # leading empty level
        "Siaga/tb-menggala/telemetry",  # topics are case-sensitive
        "siaga/tb-menggala/status",  # wrong suffix
        "siaga/tb-menggala/Telemetry",
        "siaga/tb-menggala/telemetry/",  # trailing empty level
        "siaga/tb-menggala/telemetry/extra",  # extra level after
        "siaga/extra/tb-menggala/telemetry",  # extra level between
        "siaga/tb-menggala",  # missing suffix
        "siaga/telemetry",
        "siaga//telemetry",  # empty station id
        "siaga/-leading-dash/telemetry",  # ids start with a letter or digit
        "siaga/.hidden/telemetry",
        "siaga/has space/telemetry",
        "siaga/plus+/telemetry",
        "siaga/+/telemetry",  # a wildcard is not a station
        "siaga/#/telemetry",
        "siaga/ümlaut/telemetry",
        "siaga/" + "9" * 65 + "/telemetry",  # longer than 64 characters
        "siaga",
        "",
    ],
)
def test_station_of_refuses_topics_outside_the_scheme(topic: str) -> None:
    assert TopicScheme().station_of(topic) is None


def test_station_of_refuses_an_id_with_a_trailing_newline() -> None:
    assert TopicScheme().station_of("siaga/tb-menggala\n/telemetry") is None


@given(st.text(max_size=80))
def test_station_of_never_raises_and_only_returns_pattern_ids(topic: str) -> None:
    station_id = TopicScheme().station_of(topic)
    if station_id is not None:
        assert STATION_ID_PATTERN.match(station_id)
        assert topic == f"siaga/{station_id}/telemetry"


@pytest.mark.parametrize(
    ("topic", "route"),
    [
        ("siaga/tb-menggala/telemetry", Route("native", "tb-menggala")),
        ("v3/siaga-app/devices/dds75-1/up", Route("ttn", "dds75-1", application_id="siaga-app")),
        (
            "v3/siaga-app@lampung/devices/dds75-1/up",
            Route("ttn", "dds75-1", application_id="siaga-app"),
        ),
        (
            "application/7f3a/device/a84041000181c0de/event/up",
            Route("chirpstack", "A84041000181C0DE", application_id="7f3a", event="up"),
        ),
        (
            "application/7f3a/device/A84041000181C0DE/event/status",
            Route("chirpstack", "A84041000181C0DE", application_id="7f3a", event="status"),
        ),
    ],
)
def test_parse_route(topic: str, route: Route) -> None:
    assert parse_route(topic, TopicScheme()) == route


@pytest.mark.parametrize(
    "topic",
    [
        "siaga/tb-menggala/status",
        "v3/siaga-app/devices/dds75-1/down",  # downlinks are not ours
        "v3/siaga-app/devices/dds75-1/up/extra",
        "v3//devices/dds75-1/up",
        "v3/a/b/devices/dds75-1/up",
        "application/7f3a/device/A84041000181C0D/event/up",  # 15 hex digits
        "application/7f3a/device/A84041000181C0DEX/event/up",
        "application/7f3a/device/G84041000181C0DE/event/up",
        "application/7f3a/device/A84041000181C0DE/event/Up",
        "application/7f3a/device/A84041000181C0DE/event/up/more",
        "",
    ],
)
def test_parse_route_refuses_other_topics(topic: str) -> None:
    assert parse_route(topic, TopicScheme()) is None


def test_every_lorawan_filter_delivers_topics_parse_route_accepts() -> None:
    samples = iter(["siaga-app", "dds75-1", "7f3a", "A84041000181C0DE", "7f3a", "A84041000181C0DE"])
    kinds = []
    for topic_filter in LORAWAN_FILTERS:
        topic = "/".join(
            next(samples) if level == "+" else level for level in topic_filter.split("/")
        )
        route = parse_route(topic, TopicScheme())
        assert route is not None, topic
        kinds.append(route.kind)
    assert kinds == ["ttn", "chirpstack", "chirpstack"]
