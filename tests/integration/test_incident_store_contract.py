"""One contract for the incident store, run against memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from alerts.incidents.errors import IncidentNotFoundError, LeadershipLostError
from alerts.incidents.memory import MemoryIncidentStore
from alerts.incidents.migrations import downgrade, upgrade
from alerts.incidents.ports import IncidentStore
from alerts.incidents.records import IncidentFilter
from alerts.incidents.store import SqlIncidentStore
from alerts.model import AlertEvent, EventKind, IncidentState, Transition
from devices.levels import Level

pytestmark = pytest.mark.integration

S = 1_000_000_000
LABELS = {
    "katulampa": {"regency": "Bogor", "river": "Ciliwung", "station": "katulampa"},
    "depok": {"regency": "Depok", "river": "Ciliwung", "station": "depok"},
}


def level(
    subject: str,
    at_s: int,
    severity: Level,
    previous: Level | None,
    state: IncidentState,
    before: IncidentState | None,
) -> Transition:
    event = AlertEvent(
        at_ns=at_s * S,
        subject=subject,
        kind=EventKind.LEVEL,
        rule="level",
        firing=state != IncidentState.RESOLVED,
        severity=severity,
        previous=previous,
        value=100.0 + at_s,
        detail=f"{subject} at {severity.name}",
    )
    return Transition(subject, "level", before, state, event)


def rate(subject: str, at_s: int) -> Transition:
    event = AlertEvent(
        at_ns=at_s * S,
        subject=subject,
        kind=EventKind.RATE,
        rule="rate:rise",
        firing=True,
        severity=Level.SIAGA,
        trend_cm_h=80.0,
    )
    return Transition(subject, "rate:rise", None, IncidentState.FIRING, event)


FIRING, RESOLVED = IncidentState.FIRING, IncidentState.RESOLVED
RISE_AND_FALL = (
    level("katulampa", 10, Level.WASPADA, Level.NORMAL, FIRING, None),
    level("katulampa", 20, Level.AWAS, Level.WASPADA, FIRING, FIRING),
    level("katulampa", 30, Level.NORMAL, Level.AWAS, RESOLVED, FIRING),
)
"""One incident's life at Katulampa: it warns, escalates to AWAS and resolves."""


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IncidentStore]:
    if request.param == "memory":
        yield MemoryIncidentStore()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'incidents.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    async with SqlIncidentStore(url) as sql_store:
        yield sql_store


async def test_a_first_transition_opens_an_incident_with_labels_history_and_outbox(
    store: IncidentStore,
) -> None:
    first = level("katulampa", 10, Level.WASPADA, Level.NORMAL, FIRING, None)
    report = await store.commit([first], {"katulampa": b"state-1"}, LABELS, now_ns=11 * S)
    assert len(report.transition_ids) == 1
    assert report.duplicates == 0
    [incident] = await store.list()
    assert incident.subject == "katulampa"
    assert incident.state == FIRING
    assert incident.severity == Level.WASPADA
    assert incident.opened_ns == 10 * S
    assert incident.labels["regency"] == "Bogor"
    assert incident.labels["kind"] == "level"
    assert incident.last_event == first.event
    full = await store.get(incident.id)
    assert full is not None
    assert full.transitions == (first,)
    [entry] = await store.outbox_new()
    assert entry.transition == first
    assert entry.incident_id == incident.id
    assert entry.transition_id == report.transition_ids[0]
    assert await store.load_states() == {"katulampa": b"state-1"}


async def test_escalation_and_resolution_update_one_incident_and_a_new_rise_opens_another(
    store: IncidentStore,
) -> None:
    for step in RISE_AND_FALL:
        await store.commit([step], {}, LABELS)
    [resolved] = await store.list(IncidentFilter(active_only=False))
    assert resolved.state == RESOLVED
    assert resolved.severity == Level.AWAS  # the highest it reached stays visible
    assert resolved.resolved_ns == 30 * S
    assert await store.list() == []
    again = level("katulampa", 40, Level.WASPADA, Level.NORMAL, FIRING, None)
    await store.commit([again], {}, LABELS)
    [active] = await store.list()
    assert active.id != resolved.id
    history = await store.get(resolved.id)
    assert history is not None
    assert [t.state for t in history.transitions] == [FIRING, FIRING, RESOLVED]
    assert len(await store.outbox_new()) == 4


async def test_one_commit_moves_an_incident_several_times_and_a_partial_replay_skips_its_part(
    store: IncidentStore,
) -> None:
    steps = [
        *RISE_AND_FALL,
        level("katulampa", 40, Level.WASPADA, Level.NORMAL, FIRING, None),
        level("depok", 40, Level.SIAGA, Level.NORMAL, FIRING, None),
    ]
    first = await store.commit(steps[:2], {}, LABELS)
    # A replay after a restart: the first two again, then what was never committed.
    report = await store.commit([*steps, steps[4]], {}, LABELS)
    assert len(first.transition_ids) == 2
    assert len(report.transition_ids) == 3
    assert report.skipped == (0, 1, 5)
    [resolved] = await store.list(
        IncidentFilter(active_only=False, station="katulampa", until_ns=35 * S)
    )
    assert (resolved.state, resolved.severity, resolved.resolved_ns) == (
        RESOLVED,
        Level.AWAS,
        30 * S,
    )
    history = await store.get(resolved.id)
    assert history is not None
    assert [t.state for t in history.transitions] == [FIRING, FIRING, RESOLVED]
    active = {(i.subject, i.severity) for i in await store.list()}
    assert active == {("katulampa", Level.WASPADA), ("depok", Level.SIAGA)}
    assert len(await store.outbox_new()) == 5


async def test_replaying_a_committed_step_repeats_nothing(store: IncidentStore) -> None:
    step = [
        level("katulampa", 10, Level.SIAGA, Level.NORMAL, FIRING, None),
        rate("katulampa", 10),
    ]
    first = await store.commit(step, {"katulampa": b"a"}, LABELS)
    again = await store.commit(step, {"katulampa": b"b"}, LABELS)
    assert len(first.transition_ids) == 2
    assert again.transition_ids == ()
    assert again.duplicates == 2
    assert again.skipped == (0, 1)
    assert len(await store.outbox_new()) == 2
    assert len(await store.list()) == 2
    assert await store.load_states() == {"katulampa": b"b"}


async def test_list_filters_orders_and_pages(store: IncidentStore) -> None:
    await store.commit(
        [
            level("katulampa", 10, Level.SIAGA, Level.NORMAL, FIRING, None),
            level("depok", 20, Level.WASPADA, Level.NORMAL, FIRING, None),
            rate("depok", 30),
        ],
        {},
        LABELS,
    )
    assert [i.subject for i in await store.list()] == ["depok", "depok", "katulampa"]

    async def listed(field: str, wanted: IncidentFilter) -> list[object]:
        return [getattr(i, field) for i in await store.list(wanted)]

    assert await listed("rule", IncidentFilter(station="depok")) == ["rate:rise", "level"]
    assert await listed("subject", IncidentFilter(regency="Bogor")) == ["katulampa"]
    assert await listed("rule", IncidentFilter(kind=EventKind.RATE)) == ["rate:rise"]
    assert await listed("subject", IncidentFilter(severity=Level.WASPADA)) == ["depok"]
    assert await listed("updated_ns", IncidentFilter(since_ns=20 * S)) == [30 * S, 20 * S]
    assert await listed("opened_ns", IncidentFilter(until_ns=20 * S)) == [10 * S]
    assert await listed("updated_ns", IncidentFilter(limit=1, offset=1)) == [20 * S]
    # A caller's scope: only its regencies' incidents (none for an empty scope).
    bogor, depok_x = frozenset({"Bogor"}), frozenset({"Depok", "X"})
    assert await listed("subject", IncidentFilter(regencies=bogor)) == ["katulampa"]
    assert await listed("subject", IncidentFilter(regencies=depok_x)) == ["depok", "depok"]
    assert await store.list(IncidentFilter(regencies=frozenset())) == []


async def test_acknowledge_and_assign(store: IncidentStore) -> None:
    await store.commit([level("depok", 20, Level.SIAGA, Level.NORMAL, FIRING, None)], {}, LABELS)
    [incident] = await store.list()
    acked = await store.acknowledge(incident.id, "rina", "tim menuju lokasi", 25 * S)
    assert acked.acknowledged is not None
    assert (acked.acknowledged.by, acked.acknowledged.at_ns) == ("rina", 25 * S)
    assert acked.acknowledged.comment == "tim menuju lokasi"
    assert len(acked.transitions) == 1
    assigned = await store.assign(incident.id, "budi", 26 * S)
    assert assigned.assignee == "budi"
    assert assigned.acknowledged == acked.acknowledged
    # An escalation keeps who acknowledged and who is assigned.
    await store.commit([level("depok", 30, Level.AWAS, Level.SIAGA, FIRING, FIRING)], {}, LABELS)
    after = await store.get(incident.id)
    assert after is not None
    assert after.severity == Level.AWAS
    assert after.acknowledged == acked.acknowledged
    assert after.assignee == "budi"
    with pytest.raises(IncidentNotFoundError):
        await store.acknowledge(incident.id + 100, "rina", "", 1)
    with pytest.raises(IncidentNotFoundError):
        await store.assign(incident.id + 100, "rina", 1)
    assert await store.get(incident.id + 100) is None


async def test_an_acknowledgement_only_if_new_keeps_the_first(store: IncidentStore) -> None:
    await store.commit([level("depok", 20, Level.SIAGA, Level.NORMAL, FIRING, None)], {}, LABELS)
    [incident] = await store.list()
    first = await store.acknowledge(incident.id, "rina", "via telegram", 25 * S, only_if_new=True)
    again = await store.acknowledge(incident.id, "budi", "via sms", 26 * S, only_if_new=True)
    assert first.acknowledged is not None
    assert again.acknowledged == first.acknowledged
    assert (again.acknowledged.by, again.acknowledged.at_ns) == ("rina", 25 * S)
    with pytest.raises(IncidentNotFoundError):
        await store.acknowledge(incident.id + 100, "rina", "", 1, only_if_new=True)
    # Without it, the web UI's acknowledgement still records the newest.
    newest = await store.acknowledge(incident.id, "budi", "di lokasi", 27 * S)
    assert newest.acknowledged is not None
    assert newest.acknowledged.by == "budi"


async def test_outbox_rows_are_routed_once(store: IncidentStore) -> None:
    await store.commit(
        [
            level("depok", 20, Level.SIAGA, Level.NORMAL, FIRING, None),
            level("katulampa", 21, Level.SIAGA, Level.NORMAL, FIRING, None),
        ],
        {},
        LABELS,
    )
    first, second = await store.outbox_new()
    assert first.id < second.id
    assert first.transition.subject == "depok"
    assert await store.mark_routed([first.id], 30 * S) == 1
    assert await store.mark_routed([first.id], 31 * S) == 0
    assert [e.id for e in await store.outbox_new()] == [second.id]


async def test_engine_state_is_upserted_per_key(store: IncidentStore) -> None:
    await store.commit([], {"a": b"1", "b": b"\x00\xff"})
    await store.commit([], {"a": b"2"})
    assert await store.load_states() == {"a": b"2", "b": b"\x00\xff"}


async def test_engine_state_saved_apart_is_upserted_per_key(store: IncidentStore) -> None:
    # More keys than one multi-row statement holds on SQLite.
    first = {f"station-{i:05d}": b"%d" % i for i in range(12_345)}
    await store.save_states(first)
    # A second snapshot of most keys, in the transitions' commit (PostgreSQL: by COPY).
    second = {key: blob + b"'\t\\N" for key, blob in list(first.items())[:10_000]}
    await store.commit([], second)
    await store.save_states({"station-00007": b"\x00\xff", "regency:Bogor": b"g"})
    await store.save_states({})
    assert await store.load_states() == {
        **first,
        **second,
        "station-00007": b"\x00\xff",
        "regency:Bogor": b"g",
    }


async def test_engine_state_rows_with_none_are_deleted(store: IncidentStore) -> None:
    # A snapshot replaces the journal entries it covers: with them in one commit, or apart.
    entries = {f"journal:{n:020d}": b"[%d]" % n for n in range(1, 1201)}
    await store.commit([], {**entries, "a": b"1"})
    await store.commit([], {"journal:00000000000000000001": None, "a": b"2", "gone": None})
    await store.save_states(dict.fromkeys(list(entries)[1:1100]) | {"b": b"3"})
    assert await store.load_states() == {
        "a": b"2",
        "b": b"3",
        **{key: entries[key] for key in list(entries)[1100:]},
    }


# -- SQL only ---------------------------------------------------------------------------------


def test_migrations_create_the_tables_and_go_back_down(sql_url: str) -> None:
    ours = {"incidents", "incident_transitions", "outbox", "engine_state"}
    upgrade(sql_url)
    assert ours <= _tables(sql_url)
    downgrade(sql_url, "base")
    assert not ours & _tables(sql_url)
    upgrade(sql_url)
    upgrade(sql_url)  # idempotent
    assert ours <= _tables(sql_url)


API_TABLES = {"users", "api_keys", "sessions", "ack_link_uses"}
NOTIFY_TABLES = {
    "notify_queue",
    "notify_flushed",
    "notify_deliveries",
    "notify_escalations",
    "notify_silences",
    "cap_documents",
}
# Newer than both old heads: a database recorded at them never had these.
CHAT_TABLES = {"contact_links", "link_codes", "chat_posts", "chat_inbound", "chat_state"}


@pytest.mark.parametrize(
    ("recorded", "missing"),
    [
        pytest.param({"0002_api_accounts", "0002_notify"}, set(), id="both-old-heads"),
        pytest.param({"0002_notify"}, API_TABLES, id="old-notify-head"),
        pytest.param({"0002_api_accounts"}, NOTIFY_TABLES, id="api-head"),
    ],
)
def test_databases_of_the_two_headed_chain_upgrade(
    sql_url: str, recorded: set[str], missing: set[str]
) -> None:
    """Before the merge made one chain, 0002_api_accounts and 0002_notify both followed 0001."""
    upgrade(sql_url)
    engine = create_engine(sql_url)
    try:
        with engine.begin() as connection:
            for table in sorted(missing | CHAT_TABLES):
                connection.execute(text(f"DROP TABLE {table}"))
            connection.execute(text("DELETE FROM alembic_version"))
            for revision in sorted(recorded):
                connection.execute(
                    text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": revision}
                )
            connection.execute(
                text("INSERT INTO engine_state (key, state, updated_ns) VALUES ('kept', :s, 1)"),
                {"s": b"state"},
            )
        upgrade(sql_url)
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            kept = connection.execute(text("SELECT key FROM engine_state")).all()
    finally:
        engine.dispose()
    assert versions == [("0005_tenancy",)]
    assert _tables(sql_url) >= API_TABLES | NOTIFY_TABLES | CHAT_TABLES
    assert ("kept",) in kept
    downgrade(sql_url, "base")
    assert not (API_TABLES | NOTIFY_TABLES) & _tables(sql_url)


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


async def test_only_one_store_leads_and_the_next_leads_once_it_is_gone(sql_url: str) -> None:
    async with SqlIncidentStore(sql_url) as first, SqlIncidentStore(sql_url) as second:
        await first.lead()
        assert first.leading
        assert not await _leads_within(second, 0.5)
        await first.commit([level("depok", 20, Level.SIAGA, Level.NORMAL, FIRING, None)], {})
        await first.aclose()
        assert await _leads_within(second, 10)
        assert len(await second.list()) == 1


async def test_a_leader_whose_lock_connection_died_commits_nothing(postgres_url: str) -> None:
    async with SqlIncidentStore(postgres_url) as leader, SqlIncidentStore(postgres_url) as other:
        await leader.lead()
        killed = await other._run(lambda: _terminate_other_backends(other))
        assert killed >= 1
        with pytest.raises(LeadershipLostError):
            await leader.commit(
                [level("depok", 20, Level.SIAGA, Level.NORMAL, FIRING, None)], {"depok": b"x"}
            )
        with pytest.raises(LeadershipLostError):
            await leader.check_leadership()
        assert await other.list() == []
        assert await other.load_states() == {}
        assert await _leads_within(other, 10)


def _terminate_other_backends(store: SqlIncidentStore) -> int:
    with store.engine.begin() as connection:
        return len(
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                )
            ).all()
        )


async def _leads_within(store: SqlIncidentStore, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            await store.lead(poll_s=0.05)
    except TimeoutError:
        return False
    return True
