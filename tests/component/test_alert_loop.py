"""The alert engine's process with in-memory parts: commit, then acknowledge; crashes repeat
nothing; InfluxDB and the incident database may fail without losing or repeating an event."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts import journal
from alerts.alert_records import alert_record, decode_records, encode_records
from alerts.engine import Engine
from alerts.incidents.errors import IncidentStoreError, LeadershipLostError
from alerts.incidents.memory import MemoryIncidentStore
from alerts.incidents.records import IncidentFilter
from alerts.loop import AlertLoop, LoopPolicy
from alerts.model import AlertEvent, EventKind, IncidentState, Transition
from alerts.rules.config import RulesConfig
from devices import TopicScheme, load_stations
from devices.levels import Level
from devices.stations import StaticRegistry
from ingest.source import MemorySource
from ingest.spool import Spool
from ingest.storage.memory import MemoryStorage
from ingest.validation import Limits, Validator
from tests.conftest import STATIONS_FILE
from tests.helpers import eventually, reading_payload

STATION = "ciliwung-katulampa"
TOPIC = f"siaga/{STATION}/telemetry"
MIN_MS = 60_000
# Katulampa: waspada > 80, siaga > 150, awas > 200 cm. A rise, a crest and a fall.
BASE_MS = time.time_ns() // 1_000_000 - 4 * 3600 * 1000
FLOOD = [60, 70, 85, 95, 120, 155, 170, 190, 205, 230, 240, 220, 190, 150, 120, 90, 70, 60, 55]


@pytest.fixture(scope="module")
def registry() -> StaticRegistry:
    return load_stations(STATIONS_FILE)


@dataclass
class Rig:
    source: MemorySource
    store: MemoryIncidentStore
    storage: MemoryStorage
    loop: AlertLoop
    stop: asyncio.Event
    task: asyncio.Task[None]
    committed: list[Transition]

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)

    async def crash(self) -> None:
        """kill -9: no flush, no acknowledgement; the broker offers what was unacknowledged."""
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        self.source.crash()


async def start(
    tmp_path: Path,
    registry: StaticRegistry,
    *,
    source: MemorySource | None = None,
    store: MemoryIncidentStore | None = None,
    storage: MemoryStorage | None = None,
    snapshot_interval_s: float = 30.0,
    companions: Mapping[str, Callable[[], Coroutine[Any, Any, None]]] | None = None,
) -> Rig:
    source = source or MemorySource()
    store = store or MemoryIncidentStore()
    storage = storage or MemoryStorage()
    committed: list[Transition] = []
    loop = AlertLoop(
        source=source,
        validator=Validator(registry, TopicScheme(), Limits()),
        engine=Engine(registry, scope=None, late_lag_s=86400 * 7),
        store=store,
        storage=storage,
        spool=Spool(tmp_path / "alert-spool", 10 << 20),
        registry=registry,
        policy=LoopPolicy(
            commit_interval_s=0.01,
            commit_max_messages=5,
            checkpoint_interval_s=0.05,
            checkpoint_max_messages=8,
            snapshot_interval_s=snapshot_interval_s,
            tick_interval_s=3600,
            health_interval_s=0.05,
            leader_check_s=0.05,
            retry_initial_s=0.005,
            retry_max_s=0.02,
            restart_initial_s=0.005,
            restart_max_s=0.02,
        ),
        observers=[lambda transitions, _ns: committed.extend(transitions)],
    )
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop, companions))
    await asyncio.wait_for(loop.ready.wait(), 10)
    return Rig(source, store, storage, loop, stop, task, committed)


async def crash_and_restart(
    first: Rig, tmp_path: Path, registry: StaticRegistry, snapshot_interval_s: float
) -> Rig:
    """kill -9 the first process, then start another on the same broker, database and storage."""
    await first.crash()
    return await start(
        tmp_path,
        registry,
        source=first.source,
        store=first.store,
        storage=first.storage,
        snapshot_interval_s=snapshot_interval_s,
    )


@pytest.fixture
async def rig(tmp_path: Path, registry: StaticRegistry) -> AsyncIterator[Rig]:
    rig = await start(tmp_path, registry)
    yield rig
    if not rig.task.done():
        await rig.finish()


def publish_flood(source: MemorySource, levels: list[int], first: int = 0) -> None:
    for i, cm in enumerate(levels, start=first):
        source.publish(TOPIC, reading_payload(BASE_MS + i * 10 * MIN_MS, water_level_cm=cm))


def expected_transitions(registry: StaticRegistry, levels: list[int]) -> list[tuple[str, ...]]:
    """The reference: the same engine fed the same messages directly, with no process around."""
    source = MemorySource()
    publish_flood(source, levels)
    validator = Validator(registry, TopicScheme(), Limits())
    engine = Engine(registry, late_lag_s=86400 * 7)
    found: list[tuple[str, ...]] = []
    for delivery in source._waiting:
        now_ns = time.time_ns()
        readings = validator.validate(delivery.topic, delivery.payload, now_ns).readings
        found += [describe(t) for t in engine.process(readings, now_ns).transitions]
    return found


def describe(transition: Transition) -> tuple[str, ...]:
    event = transition.event
    return (transition.rule, transition.state.value, event.severity.name, event.id)


async def stored_transitions(store: MemoryIncidentStore) -> list[tuple[str, ...]]:
    return [describe(t) for _, t in sorted(store.history.values(), key=lambda p: p[1].event.at_ns)]


async def test_a_flood_commits_its_transitions_then_acknowledges(
    rig: Rig, registry: StaticRegistry
) -> None:
    publish_flood(rig.source, FLOOD)
    await eventually(lambda: not rig.source.unacked, what="every message acknowledged")
    expected = expected_transitions(registry, FLOOD)
    levels = [t for t in expected if t[0] == "level"]
    assert [t[2] for t in levels if t[1] == "firing"] == [
        "WASPADA",
        "SIAGA",
        "AWAS",
        "SIAGA",
        "WASPADA",
    ]
    assert levels[-1][1] == "resolved"
    assert sorted(await stored_transitions(rig.store)) == sorted(expected)
    assert len(rig.store.outbox) == len(expected)
    [incident] = await rig.store.list(
        IncidentFilter(active_only=False, station=STATION, kind=EventKind.LEVEL)
    )
    assert incident.state == IncidentState.RESOLVED
    assert incident.labels["regency"] == "Kota Bogor"
    assert incident.labels["river"] == "Ciliwung"
    assert rig.loop.counters.acked == len(FLOOD)
    # Every event reached InfluxDB's ``alerts`` through the spool.
    await eventually(lambda: rig.loop._spool.empty, what="alert spool drained")
    stored = await rig.storage.alerts(0)
    assert {r.event_id for r in stored} >= {t[3] for t in expected}
    # Katulampa's own events, and its early warning to Depok downstream.
    assert {STATION, "ciliwung-depok"} <= {r.station_id for r in stored}


async def test_acknowledgement_waits_for_the_incident_database(
    rig: Rig, registry: StaticRegistry
) -> None:
    rig.store.available = False
    publish_flood(rig.source, FLOOD[:6])
    await eventually(lambda: rig.loop.counters.commit_failures >= 3, what="failed commits")
    assert len(rig.source.unacked) == 6
    assert rig.store.history == {}
    rig.store.available = True
    await eventually(lambda: not rig.source.unacked, what="acknowledged after recovery")
    assert sorted(await stored_transitions(rig.store)) == sorted(
        expected_transitions(registry, FLOOD[:6])
    )


class StateFailingStore(MemoryIncidentStore):
    """Saves snapshots apart from the transitions, and fails that when told to."""

    def __init__(self) -> None:
        super().__init__(states_apart=True)
        self.state_fails = False

    async def save_states(self, states: Mapping[str, bytes | None]) -> None:
        if self.state_fails:
            raise IncidentStoreError("state table unavailable")
        await super().save_states(states)


def saved(store: MemoryIncidentStore) -> journal.Saved:
    return journal.split(store.states)


async def test_a_snapshot_that_fails_holds_back_nothing(
    tmp_path: Path, registry: StaticRegistry
) -> None:
    store = StateFailingStore()
    store.state_fails = True
    rig = await start(tmp_path, registry, store=store, snapshot_interval_s=0.01)
    try:
        publish_flood(rig.source, FLOOD[:6])
        # The journal entries went with the transitions: acknowledged without the snapshot.
        await eventually(lambda: not rig.source.unacked, what="acknowledged on the journal")
        assert rig.loop.counters.snapshot_failures >= 1
        assert sorted(await stored_transitions(store)) == sorted(
            expected_transitions(registry, FLOOD[:6])
        )
        assert STATION not in store.states
        assert sum(len(json.loads(b)["ops"][0][1]) for _, b in saved(store).entries) == 6
        store.state_fails = False
        publish_flood(rig.source, FLOOD[6:8], first=6)
        # The next snapshot takes the failed one's place and replaces every entry.
        await eventually(lambda: STATION in store.states, what="snapshot saved")
        await eventually(lambda: not saved(store).entries, what="entries replaced")
        assert saved(store).covered == rig.loop.counters.journal_entries
    finally:
        await rig.finish()


async def test_influxdb_down_holds_nothing_back_and_loses_no_event(rig: Rig) -> None:
    rig.storage.available = False
    publish_flood(rig.source, FLOOD)
    await eventually(lambda: not rig.source.unacked, what="acknowledged while InfluxDB is down")
    assert len(rig.store.history) > 0
    await eventually(lambda: rig.loop.counters.alert_write_failures >= 1, what="a failed write")
    assert rig.storage.alert_records == {}
    rig.storage.available = True
    await eventually(lambda: rig.loop._spool.empty, what="spool drained")
    events = {r.event_id for r in await rig.storage.alerts(0)}
    assert {t[3] for t in await stored_transitions(rig.store)} <= events


@pytest.mark.parametrize("snapshot_s", [3600, 0.0], ids=["journal-replayed", "snapshot-each"])
@pytest.mark.parametrize("states_apart", [False, True], ids=["state-with", "state-apart"])
@pytest.mark.parametrize("crash_after", [3, 7, 12])
async def test_a_crash_mid_flood_loses_and_repeats_nothing(
    tmp_path: Path,
    registry: StaticRegistry,
    crash_after: int,
    states_apart: bool,
    snapshot_s: float,
) -> None:
    first = await start(
        tmp_path,
        registry,
        store=MemoryIncidentStore(states_apart=states_apart),
        snapshot_interval_s=snapshot_s,
    )
    publish_flood(first.source, FLOOD)
    await eventually(lambda: first.loop.counters.messages >= crash_after, what="some evaluated")
    second = await crash_and_restart(first, tmp_path, registry, snapshot_s)
    await eventually(lambda: not second.source.unacked, what="the rest acknowledged")
    await second.finish()
    assert sorted(await stored_transitions(second.store)) == sorted(
        expected_transitions(registry, FLOOD)
    )
    # The second process evaluated again what the first had not checkpointed; the store knew
    # those transitions and stored none of them twice.
    assert not {describe(t) for t in first.committed} & {describe(t) for t in second.committed}


async def test_a_restart_replays_the_journal_since_the_snapshot(
    tmp_path: Path, registry: StaticRegistry
) -> None:
    first = await start(tmp_path, registry, snapshot_interval_s=3600)
    publish_flood(first.source, FLOOD[:8])
    await eventually(lambda: not first.source.unacked, what="the first part acknowledged")
    publish_flood(first.source, FLOOD[8:14], first=8)
    await eventually(lambda: not first.source.unacked, what="the second part acknowledged")
    # The rise is covered by the first checkpoint's snapshot and journal entries after it.
    held = saved(first.store)
    journaled = sum(len(op[1]) for _, b in held.entries for op in json.loads(b)["ops"])
    assert held.covered >= 1
    assert journaled >= 6
    publish_flood(first.source, FLOOD[14:], first=14)
    second = await crash_and_restart(first, tmp_path, registry, 3600)
    assert second.loop.counters.replayed_readings == journaled
    await eventually(lambda: not second.source.unacked, what="the rest acknowledged")
    await second.finish()
    assert sorted(await stored_transitions(second.store)) == sorted(
        expected_transitions(registry, FLOOD)
    )
    assert not {describe(t) for t in first.committed} & {describe(t) for t in second.committed}
    # Replayed, the engine is where it was: the readings acknowledged before the crash are
    # known again (none was evaluated twice), and the fall resolved the rise's incident.
    assert second.loop.counters.duplicates == 0
    assert second.loop.engine.level_of(STATION) == Level.NORMAL
    # A graceful stop snapshots: nothing is left to replay.
    assert not saved(second.store).entries


async def test_device_health_comes_from_the_engine(rig: Rig) -> None:
    publish_flood(rig.source, FLOOD[:4])
    await eventually(lambda: STATION in rig.storage.health_snapshots, what="health stored")
    assert rig.storage.health_snapshots[STATION].readings_24h >= 1


def test_alert_records_survive_the_spool_encoding() -> None:
    event = AlertEvent(
        at_ns=5,
        subject=STATION,
        kind=EventKind.UPSTREAM,
        rule="upstream:ciliwung-katulampa",
        firing=True,
        severity=Level.SIAGA,
        late=True,
        detail='banjir "kiriman" datang',
    )
    records = [alert_record(event)]
    assert decode_records(encode_records(records)) == records
    assert records[0].level == "SIAGA"
    assert records[0].event_id == event.id


class LosingStore(MemoryIncidentStore):
    """Leads, then loses the lock when told to (as a leader whose connection died)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    async def check_leadership(self) -> None:
        if self.lost:
            raise LeadershipLostError("the leader lock was lost")

    async def commit(self, *args: Any, **kwargs: Any) -> Any:
        if self.lost:
            raise LeadershipLostError("the leader lock was lost")
        return await super().commit(*args, **kwargs)


async def test_a_leader_that_loses_the_lock_stops_and_acknowledges_nothing_more(
    tmp_path: Path, registry: StaticRegistry
) -> None:
    store = LosingStore()
    rig = await start(tmp_path, registry, store=store)
    publish_flood(rig.source, FLOOD[:4])
    await eventually(lambda: not rig.source.unacked, what="acknowledged while leading")
    store.lost = True
    publish_flood(rig.source, FLOOD[4:], first=4)
    with pytest.raises(LeadershipLostError):
        await asyncio.wait_for(rig.task, 10)
    assert len(rig.source.unacked) == len(FLOOD) - 4


async def test_time_driven_transitions_are_durable_with_what_caused_them(
    tmp_path: Path, registry: StaticRegistry
) -> None:
    # Ten days after the engine started, no station has reported: no-data fires on the first
    # tick. Its events carry the wall clock, so the state must be durable with them at once,
    # long before the next regular checkpoint.
    later_ns = time.time_ns() + 10 * 86400 * 1_000_000_000
    store = MemoryIncidentStore()
    loop = AlertLoop(
        source=MemorySource(),
        validator=Validator(registry, TopicScheme(), Limits()),
        engine=Engine(registry, started_ns=time.time_ns()),
        store=store,
        storage=MemoryStorage(),
        spool=Spool(tmp_path / "alert-spool", 10 << 20),
        registry=registry,
        policy=LoopPolicy(tick_interval_s=0.01, checkpoint_interval_s=3600),
        clock_ns=lambda: later_ns,
    )
    task = asyncio.create_task(loop.run(asyncio.Event()))
    await eventually(lambda: bool(store.history), what="no-data transitions")
    task.cancel()  # kill -9
    with pytest.raises(asyncio.CancelledError):
        await task
    kinds = {t.event.kind for _, t in store.history.values()}
    assert kinds == {EventKind.NO_DATA}
    # What the store holds (snapshot + journal) gives a new engine the same incidents, though
    # its own clock says something else.
    restored = Engine(registry, started_ns=later_ns)
    held = journal.split(store.states)
    restored.restore(held.states)
    journal.replay(restored, (body for _, body in held.entries))
    assert restored.incidents() == loop.engine.incidents()
    assert {subject for subject, _ in restored.incidents()} == {
        t.subject for _, t in store.history.values()
    }


async def test_a_rules_reload_snapshots_at_the_next_checkpoint(
    tmp_path: Path, registry: StaticRegistry
) -> None:
    # Journal entries are replayed under the configuration in force at a restart: those
    # recorded under the old rules must go under a snapshot first.
    rig = await start(tmp_path, registry, snapshot_interval_s=3600)
    try:
        publish_flood(rig.source, FLOOD[:4])
        await eventually(lambda: not rig.source.unacked, what="acknowledged")
        await eventually(lambda: rig.loop.counters.snapshots == 1, what="the first snapshot")
        publish_flood(rig.source, FLOOD[4:6], first=4)
        await eventually(lambda: bool(saved(rig.store).entries), what="entries after it")
        rig.loop.use_rules(RulesConfig())
        publish_flood(rig.source, FLOOD[6:8], first=6)
        await eventually(lambda: rig.loop.counters.snapshots == 2, what="a snapshot")
        await eventually(lambda: not saved(rig.store).entries, what="entries replaced")
    finally:
        await rig.finish()


@pytest.mark.logged_exceptions
async def test_a_companion_that_raises_is_restarted_and_counted_and_the_engine_goes_on(
    tmp_path: Path, registry: StaticRegistry
) -> None:
    # The watchers and the notifier run beside the loop: a bug in one must neither stop the
    # engine nor end that companion for good.
    runs: list[int] = []

    async def flaky_watcher() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError("watcher bug")
        await asyncio.Event().wait()

    rig = await start(tmp_path, registry, companions={"rules-watch": flaky_watcher})
    await eventually(lambda: len(runs) == 3, what="restarted twice")
    assert rig.loop.counters.companion_restarts == {"rules-watch": 2}
    publish_flood(rig.source, FLOOD[:6])
    await eventually(lambda: not rig.source.unacked, what="the engine goes on")
    assert not rig.task.done()
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "siaga.alerts.rules-watch" in names
    await rig.finish()
