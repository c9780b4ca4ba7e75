"""The API's pure parts: live diffs and fan-out, login limits, trend, Atom."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import pytest
from pydantic import ValidationError

from alerts.model import Acknowledgement
from alerts.notify.cap import CapDocument
from dashboards.api.atom import ATOM_NS, atom_feed
from dashboards.api.live import Fingerprint, LiveEvent, LiveHub, changed_incidents, new_readings
from dashboards.api.ratelimit import LoginLimiter
from dashboards.api.views import (
    NS,
    WATER_LEVEL,
    health_public,
    to_datetime,
    to_ns,
    trend_backfill,
    trend_cm_h,
)
from dashboards.settings import ApiSettings
from devices.health import BACK_DATED_AFTER_S, StationHealth, time_basis
from ingest.storage.base import LatestReading, MetricSpan
from tests.apitools import incident


def test_new_readings_are_newer_by_reading_time() -> None:
    before = {"a": LatestReading("a", 10, {}), "b": LatestReading("b", 10, {})}
    after = {
        "a": LatestReading("a", 10, {}),
        "b": LatestReading("b", 20, {}),
        "c": LatestReading("c", 5, {}),
    }
    assert sorted(r.station_id for r in new_readings(before, after)) == ["b", "c"]


def test_changed_incidents_are_reported_once_per_update() -> None:
    seen: dict[int, Fingerprint] = {}
    first = incident(1, updated_ns=100)
    assert changed_incidents(seen, [first]) == [first]
    assert changed_incidents(seen, [first]) == []
    later = incident(1, updated_ns=200)
    assert changed_incidents(seen, [later]) == [later]
    acknowledged = dataclasses.replace(later, acknowledged=Acknowledgement("siti", 300))
    assert changed_incidents(seen, [acknowledged]) == [acknowledged]
    assigned = dataclasses.replace(acknowledged, assignee="budi")
    assert changed_incidents(seen, [assigned, assigned]) == [assigned]


async def test_a_full_client_queue_drops_and_counts_without_blocking_others() -> None:
    async def poll() -> list[LiveEvent]:
        return []

    hub = LiveHub(poll, interval_s=1, queue_max=2)
    slow, fast = hub.subscribe(), hub.subscribe()
    hub.publish([LiveEvent("reading", "1"), LiveEvent("reading", "2")])
    assert fast.queue.get_nowait().data == "1"
    hub.publish([LiveEvent("reading", "3")])
    assert (slow.dropped, fast.dropped, hub.dropped) == (1, 0, 1)
    hub.unsubscribe(slow)
    hub.unsubscribe(fast)
    assert hub.clients == 0


async def test_the_hub_publishes_changes_after_a_silent_baseline() -> None:
    batches = [[LiveEvent("reading", "old")], [LiveEvent("reading", "new")]]

    async def poll() -> list[LiveEvent]:
        return batches.pop(0) if batches else []

    hub = LiveHub(poll, interval_s=0.001, queue_max=10)
    subscription = hub.subscribe()
    task = asyncio.create_task(hub.run())
    try:
        event = await asyncio.wait_for(subscription.queue.get(), 5)
    finally:
        task.cancel()
    assert event.data == "new"


def test_the_limiter_blocks_after_the_allowed_failures_for_the_window() -> None:
    limiter = LoginLimiter(max_failures=3, window_s=60)
    for moment in (0, 1, 2):
        assert limiter.retry_after_s("u", moment) == 0
        limiter.failed("u", moment)
    assert limiter.retry_after_s("u", 3) == pytest.approx(57)
    assert limiter.retry_after_s("other", 3) == 0
    assert limiter.retry_after_s("u", 61) == 0
    limiter.failed("u", 70)
    limiter.succeeded("u")
    assert limiter.retry_after_s("u", 71) == 0


def test_trend_needs_a_span_of_five_minutes() -> None:
    ns = 1_000_000_000
    assert trend_cm_h(MetricSpan("a", 0, 100.0, 1800 * ns, 110.0)) == 20.0
    assert trend_cm_h(MetricSpan("a", 0, 100.0, 60 * ns, 110.0)) is None
    assert trend_cm_h(None) is None


def test_times_round_trip_at_microsecond_precision() -> None:
    moment = datetime(2026, 3, 1, 7, 30, 0, 123456, tzinfo=UTC)
    assert to_datetime(to_ns(moment)) == moment


def test_the_atom_feed_links_each_cap_document() -> None:
    documents = [
        CapDocument(
            identifier="siaga-1,2",
            incident_id=1,
            msg_type="Alert",
            sent="2033-05-18T03:33:20+00:00",
            sent_ns=2_000_000_000_000_000_000,
            station="tb-menggala",
            headline="Awas: Menggala",
            xml="<alert/>",
        ),
    ]
    feed = ET.fromstring(
        atom_feed(documents, base_url="https://s.example/", feed_id="urn:x", now_ns=0)
    )
    entry = feed.find(f"{{{ATOM_NS}}}entry")
    assert entry is not None
    link = entry.find(f"{{{ATOM_NS}}}link")
    assert link is not None
    assert link.get("type") == "application/cap+xml"
    assert link.get("href") == "https://s.example/api/v1/cap/siaga-1%2C2.xml"
    assert entry.findtext(f"{{{ATOM_NS}}}title") == "Awas: Menggala"


T0_NS = 1_773_100_800 * 1_000_000_000


def test_health_of_a_replay_is_labelled_back_dated_for_operators() -> None:
    demo = StationHealth("tb-menggala", T0_NS, 0, 96, 0.0, 0, 13 * 86400.0)
    live = dataclasses.replace(demo, completeness_pct=99.0, clock_skew_s=2.5)
    unknown = dataclasses.replace(demo, clock_skew_s=None)
    assert health_public(demo).time_basis == "back-dated"  # type: ignore[union-attr]
    assert health_public(live).time_basis == "live"  # type: ignore[union-attr]
    assert health_public(unknown).time_basis == "unknown"  # type: ignore[union-attr]
    assert time_basis(BACK_DATED_AFTER_S) == "live"
    assert time_basis(BACK_DATED_AFTER_S + 1) == "back-dated"


def test_attempts_in_flight_count_against_the_limit_until_they_end() -> None:
    limiter = LoginLimiter(max_failures=2, window_s=60)
    limiter.begin("addr:x")
    assert limiter.retry_after_s("addr:x", 0) == 0
    limiter.begin("addr:x")
    assert limiter.retry_after_s("addr:x", 0) > 0  # a third parallel check would pass the limit
    limiter.end("addr:x")
    limiter.end("addr:x")
    assert limiter.retry_after_s("addr:x", 0) == 0
    limiter.end("addr:x")  # ending more than began does nothing
    assert limiter.retry_after_s("addr:x", 0) == 0


def test_trend_backfill_groups_back_dated_stations_by_a_window_ending_at_their_newest() -> None:
    hour_ns = 3600 * NS
    now_ns = 1_780_000_000 * NS
    latest = {
        "fresh": LatestReading("fresh", now_ns - 60 * NS, {WATER_LEVEL: 1.0}),
        "old-a": LatestReading("old-a", now_ns - 48 * hour_ns, {WATER_LEVEL: 1.0}),
        "old-b": LatestReading("old-b", now_ns - 48 * hour_ns - 60 * NS, {WATER_LEVEL: 1.0}),
        "older": LatestReading("older", now_ns - 96 * hour_ns, {WATER_LEVEL: 1.0}),
        "rain": LatestReading("rain", now_ns - 96 * hour_ns, {"rain_mm": 1.0}),
    }
    spans = {"fresh": MetricSpan("fresh", now_ns - hour_ns, 1.0, now_ns - 60 * NS, 2.0)}
    found = trend_backfill(latest, spans, hour_ns, max_queries=8)
    grid = 300 * NS
    start_a = (now_ns - 49 * hour_ns) // grid * grid
    assert found == {
        start_a: ["old-a", "old-b"],
        (now_ns - 97 * hour_ns) // grid * grid: ["older"],
    }
    assert trend_backfill(latest, spans, hour_ns, max_queries=1) == {start_a: ["old-a", "old-b"]}


def test_the_station_list_is_never_shared_longer_than_it_may_be_served() -> None:
    assert ApiSettings(overview_max_age_s=2, overview_max_stale_s=2).overview_max_stale_s == 2
    with pytest.raises(ValidationError, match=r"overview_max_stale_s \(1\) must be at least"):
        ApiSettings(overview_max_age_s=2, overview_max_stale_s=1)
