"""One contract for the notification store, run against memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alerts.notify.cap import build_cap
from alerts.notify.memory import MemoryNotifyStore
from alerts.notify.policy import ChannelSpec, Group, Recipient
from alerts.notify.records import DELIVERED, PENDING, SENDING, Delivery, Queued
from alerts.notify.regency_policy import RegencyPolicy
from alerts.notify.sqlstore import SqlNotifyStore
from alerts.notify.store import NotifyStore
from alerts.pipeline.silence import Matcher, Silence
from devices.levels import Level
from tests.unit.pipeline_helpers import T0, S, notice
from tests.unit.test_notify_message import REGISTRY, level_notice

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[NotifyStore]:
    if request.param == "memory":
        yield MemoryNotifyStore()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'siaga.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    async with SqlNotifyStore(url) as sql_store:
        yield sql_store


def delivery(identifier: str, *, created: int = T0, channel: str = "email") -> Delivery:
    return Delivery(
        id=identifier,
        message_id="m1",
        group="g",
        recipient="r",
        channel=channel,
        language="id",
        subject="s",
        body="b",
        short="sh",
        payload={"alerts": [{"x": 1}]},
        created_ns=created,
        next_attempt_ns=created,
        deadline_ns=created + 3600 * S,
    )


async def test_a_notice_is_queued_once_and_never_again_after_its_flush(store: NotifyStore) -> None:
    item = Queued("g", notice("a", nid="t1"), T0)
    assert await store.queue([item, item]) == [item]
    assert await store.queue([item]) == []
    (back,) = await store.queued()
    assert back.notice == item.notice
    assert back.queued_ns == T0
    await store.flush([("g", "t1")], [delivery("d1")])
    assert await store.queued() == []
    assert await store.queue([item]) == []
    assert await store.queue([Queued("other", item.notice, T0)]) != []


async def test_deliveries_are_claimed_leased_recorded_and_reclaimed(store: NotifyStore) -> None:
    await store.flush([], [delivery("d1"), delivery("d2", created=T0 + 1, channel="sms")])
    await store.flush([], [dataclasses.replace(delivery("d1"), body="changed")])
    claimed = await store.claim(T0, 1, 60 * S)
    assert [d.id for d in claimed] == ["d1"]
    assert claimed[0].status == SENDING
    assert claimed[0].body == "b"
    assert claimed[0].payload == {"alerts": [{"x": 1}]}
    assert [d.id for d in await store.claim(T0 + 1, 10, 60 * S)] == ["d2"]
    assert await store.claim(T0 + 59 * S, 10, 60 * S) == []
    again = await store.claim(T0 + 61 * S, 10, 60 * S)  # the sender died: the lease ran out
    assert [d.id for d in again] == ["d1", "d2"]
    await store.record(
        dataclasses.replace(
            again[0], status=DELIVERED, attempts=1, delivered_ns=T0 + 61 * S, lease_until_ns=None
        )
    )
    await store.record(
        dataclasses.replace(
            again[1],
            status=PENDING,
            attempts=1,
            next_attempt_ns=T0 + 200 * S,
            last_error="503",
            lease_until_ns=None,
        )
    )
    assert await store.claim(T0 + 199 * S, 10, 60 * S) == []
    by_id = {d.id: d for d in await store.deliveries("m1")}
    assert by_id["d1"].status == DELIVERED
    assert by_id["d2"].last_error == "503"
    assert [d.id for d in await store.claim(T0 + 200 * S, 10, 60 * S)] == ["d2"]


async def test_escalations_are_remembered(store: NotifyStore) -> None:
    await store.queue([], [(7, 1, 0), (7, 1, 1), (8, 2, 0)])
    await store.queue([], [(7, 1, 0)])
    assert await store.escalations_emitted(7) == {(1, 0), (1, 1)}
    assert await store.escalations_emitted(9) == set()


async def test_silences_are_stored_and_expire(store: NotifyStore) -> None:
    made = await store.add_silence(
        Silence(
            matchers=[
                Matcher(name="station", value="tb-menggala"),
                Matcher(name="kind", value="lev.*", op="=~"),
            ],
            starts_ns=T0,
            ends_ns=T0 + 3600 * S,
            created_by="ops",
            comment="maintenance",
        )
    )
    assert made.id > 0
    (back,) = await store.silences(T0)
    assert back == made
    assert await store.expire_silence(made.id, T0 + 60 * S)
    assert await store.silences(T0 + 60 * S) == []
    assert not await store.expire_silence(made.id + 100, T0)


async def test_silences_keep_their_regencies(store: NotifyStore) -> None:
    scoped = Silence(
        matchers=[Matcher(name="kind", value="level")],
        starts_ns=T0,
        ends_ns=T0 + 3600 * S,
        created_by="jember-op",
        comment="perbaikan",
        regencies=frozenset({"Jember", "Rembang"}),
    )
    made = await store.add_silence(scoped)
    (back,) = await store.silences(T0)
    assert back.regencies == {"Jember", "Rembang"}
    assert back == made


async def test_regency_policies_are_versioned(store: NotifyStore) -> None:
    first = RegencyPolicy(
        recipients=[
            Recipient(name="piket", channels=[ChannelSpec(name="m", url="mailto://a@b.c")])
        ],
        groups=[Group(name="piket", members=["piket"])],
        default_groups=["piket"],
    )
    second = first.model_copy(update={"default_groups": []})
    assert (await store.save_regency_policy("Jember", first, "ana", T0)).version == 1
    assert (await store.save_regency_policy("Jember", second, "budi", T0 + S)).version == 2
    assert (await store.save_regency_policy("Rembang", first, "citra", T0)).version == 1
    newest = await store.regency_policies()
    assert [(p.regency, p.version, p.created_by) for p in newest] == [
        ("Jember", 2, "budi"),
        ("Rembang", 1, "citra"),
    ]
    assert newest[0].policy == second
    history = await store.regency_policies("Jember", history=True)
    assert [(p.version, p.policy, p.created_ns) for p in history] == [
        (2, second, T0 + S),
        (1, first, T0),
    ]
    assert await store.regency_policies("Tabalong") == []


async def test_cap_documents_feed_and_references(store: NotifyStore) -> None:
    first = level_notice("ciliwung-depok", Level.WASPADA)
    second = level_notice("ciliwung-depok", Level.SIAGA, "2020-09-21T12:00:00+00:00")
    a = build_cap(first, REGISTRY, [], sender="s@x", sent_ns=first.event.at_ns)
    b = build_cap(second, REGISTRY, [], sender="s@x", sent_ns=second.event.at_ns)
    await store.flush([], [], [b, a, a])
    assert [r.identifier for r in await store.cap_references(first.incident_id)] == [
        a.identifier,
        b.identifier,
    ]
    assert [d.identifier for d in await store.cap_feed_entries(None, 10)] == [
        b.identifier,
        a.identifier,
    ]
    assert [d.identifier for d in await store.cap_feed_entries(b.sent_ns, 10)] == [b.identifier]
    assert (await store.cap_feed_entries(None, 1))[0].xml == b.xml
