from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.model import EventKind, IncidentState
from alerts.notify.channelbook import ChannelBook
from alerts.notify.channels import MemoryChannel, SendResult
from alerts.notify.dispatcher import Dispatcher
from alerts.notify.errors import PermanentDeliveryError, PolicyError
from alerts.notify.memory import MemoryNotifyStore
from alerts.notify.policy import Policy, PolicyWatcher, parse_policy
from alerts.notify.records import DELIVERED, FAILED, PENDING, SENDING
from alerts.notify.regency_policy import PolicyInForce, parse_regency_policy
from alerts.notify.runtime import follow_regency_policies
from alerts.notify.sender import Sender
from alerts.pipeline.silence import Matcher, Silence
from alerts.settings import NotifySettings
from devices.levels import Level
from devices.stations import load_stations
from tests.component.notify_fakes import FakeIncidents
from tests.helpers import eventually

REGISTRY = load_stations(Path(__file__).parents[2] / "config" / "stations.yaml")
S = 1_000_000_000
MIN = 60 * S
T0 = 1_700_000_000 * S

POLICY = """
recipients:
  - name: duty-bogor
    language: id
    channels:
      - {name: telegram, url: "json://localhost/tg"}
      - {name: email, url: "mailto://a@b", pages: false}
  - name: head-bogor
    language: en
    channels: [{name: email, url: "mailto://h@b", pages: false}]
  - name: duty-lampung
    language: id
    channels: [{name: telegram, url: "json://localhost/tg2"}]
groups:
  - {name: bpbd-bogor, members: [duty-bogor], escalation: bogor}
  - {name: bpbd-bogor-head, members: [head-bogor]}
  - {name: bpbd-lampung, members: [duty-lampung]}
routes:
  - match: {river: [Ciliwung]}
    groups: [bpbd-bogor]
default_groups: [bpbd-lampung]
group_wait_s: 30
group_interval_s: 300
repeat_interval_s: 36000
escalations:
  bogor:
    steps: [{group: bpbd-bogor, after_min: 0}, {group: bpbd-bogor-head, after_min: 15}]
    reminder_min: 10
"""


class Rig:
    def __init__(self, policy: Policy, store: MemoryNotifyStore | None = None) -> None:
        self.now = T0
        self.incidents = FakeIncidents()
        self.store = store or MemoryNotifyStore()
        self.policy = policy
        self.settings = NotifySettings(retry_initial_s=10, retry_max_s=60, lease_s=60)
        self.dispatcher = Dispatcher(
            self.incidents,
            self.store,
            lambda: self.policy,
            lambda: REGISTRY,
            self.settings,
            clock=lambda: self.now,
        )
        self.book = ChannelBook(httpx.AsyncClient())
        self.channels: dict[tuple[str, str], MemoryChannel] = {}
        for recipient in policy.recipients:
            for spec in recipient.channels:
                channel = MemoryChannel(spec.name, pages=spec.paging)
                self.channels[(recipient.name, spec.name)] = channel
                self.book.overrides[(recipient.name, spec.name)] = channel
        self.sender = Sender(
            self.store, self.book, lambda: self.policy, self.settings, clock=lambda: self.now
        )

    async def commit(self, *args: Any, **kwargs: Any) -> int:
        """The engine commits a transition; the dispatcher takes it in at once."""
        incident = self.incidents.transition(*args, **kwargs)
        await self.dispatcher.step()
        return incident

    async def advance(self, seconds: float) -> None:
        self.now += int(seconds * S)
        await self.dispatcher.step()
        await self.sender.step()

    def sent(self, recipient: str, channel: str) -> list[str]:
        return [m.body for m in self.channels[(recipient, channel)].sent]


@pytest.fixture
async def rig() -> Rig:
    created = Rig(parse_policy(POLICY))
    await created.dispatcher.start()
    return created


async def test_stations_crossing_together_make_one_message_per_recipient_channel(rig: Rig) -> None:
    lampung = [s.id for s in REGISTRY.stations() if s.regency == "Tulang Bawang"]
    for station in lampung:
        rig.incidents.transition(station, Level.WASPADA, rig.now)
    await rig.advance(0)  # the dispatcher takes them in together
    await rig.advance(29)
    assert rig.sent("duty-lampung", "telegram") == []
    await rig.advance(1)
    (body,) = rig.sent("duty-lampung", "telegram")
    for station in lampung:
        found = REGISTRY.get(station)
        assert found is not None
        assert found.name in body
    assert rig.sent("duty-bogor", "telegram") == []
    deliveries = await rig.store.deliveries()
    assert [d.status for d in deliveries] == [DELIVERED]
    # Re-reading the outbox (e.g. after a crash before mark_routed) queues nothing again.
    rig.incidents.outbox = [(e, False) for e, _ in rig.incidents.outbox]
    await rig.advance(400)
    assert len(rig.sent("duty-lampung", "telegram")) == 1


async def test_gate_message_in_indonesian_with_the_local_label_and_cap(rig: Rig) -> None:
    await rig.commit("ciliwung-katulampa", Level.AWAS, rig.now)
    await rig.advance(30)
    (body,) = rig.sent("duty-bogor", "telegram")
    assert "Siaga 1" in body
    assert "WIB" in body
    (entry,) = await rig.store.cap_feed_entries(None, 10)
    assert entry.msg_type == "Alert"
    await rig.commit("ciliwung-katulampa", Level.NORMAL, rig.now, state=IncidentState.RESOLVED)
    await rig.advance(300)
    latest, first = await rig.store.cap_feed_entries(None, 10)
    assert latest.msg_type == "Cancel"
    assert first.identifier in latest.xml


async def upstream_warning_for_depok(rig: Rig) -> None:
    """Katulampa's wave is coming: an upstream WASPADA for Depok (AWAS there inhibits it)."""
    await rig.commit(
        "ciliwung-depok",
        Level.WASPADA,
        rig.now,
        kind=EventKind.UPSTREAM,
        source="ciliwung-katulampa",
        expected_at_ns=rig.now + 3 * 3600 * S,
    )


async def test_silence_and_inhibition_drop_exactly_their_notices(rig: Rig) -> None:
    await rig.store.add_silence(
        Silence(
            matchers=[Matcher(name="station", value="tb-menggala")],
            starts_ns=T0,
            ends_ns=T0 + 3600 * S,
            created_by="ops",
            comment="gauge maintenance",
        )
    )
    await rig.commit("tb-menggala", Level.SIAGA, rig.now)
    await rig.commit("tb-banjar-agung", Level.SIAGA, rig.now)
    await rig.commit("ciliwung-depok", Level.AWAS, rig.now)
    await rig.advance(30)
    (lampung,) = rig.sent("duty-lampung", "telegram")
    assert "Banjar Agung" in lampung
    assert "Menggala" not in lampung
    await upstream_warning_for_depok(rig)
    await rig.advance(300)
    assert len(rig.sent("duty-bogor", "telegram")) == 1
    assert rig.dispatcher.counts.silenced == 1
    assert rig.dispatcher.counts.inhibited == 1


async def test_inhibition_comes_before_silence(rig: Rig) -> None:
    """Alertmanager's order: a notice both inhibited and silenced counts as inhibited."""
    assert [name for name, _ in rig.dispatcher.pipeline] == [
        "route", "escalate", "group", "inhibit", "silence", "dedup", "notify",
    ]  # fmt: skip
    await rig.store.add_silence(
        Silence(
            matchers=[
                Matcher(name="station", value="ciliwung-depok"),
                Matcher(name="kind", value="upstream"),
            ],
            starts_ns=T0,
            ends_ns=T0 + 3600 * S,
            created_by="ops",
            comment="upstream model under review",
        )
    )
    await rig.commit("ciliwung-depok", Level.AWAS, rig.now)
    await rig.advance(30)
    await upstream_warning_for_depok(rig)
    await rig.advance(300)
    assert len(rig.sent("duty-bogor", "telegram")) == 1  # the AWAS only
    assert (rig.dispatcher.counts.inhibited, rig.dispatcher.counts.silenced) == (1, 0)


async def test_unacknowledged_incident_escalates_and_reminds_until_acknowledged(rig: Rig) -> None:
    incident = await rig.commit("ciliwung-depok", Level.SIAGA, rig.now)
    await rig.advance(30)
    assert len(rig.sent("duty-bogor", "email")) == 1
    for _ in range(15):
        await rig.advance(60)
    await rig.advance(30)
    heads = rig.sent("head-bogor", "email")
    assert len(heads) == 1
    assert heads[0].startswith("ESCALATION")
    reminders = [b for b in rig.sent("duty-bogor", "email") if b.startswith("PENGINGAT")]
    assert len(reminders) == 1  # the 10-minute reminder of step 0
    rig.incidents.acknowledge(incident, rig.now)
    for _ in range(60):
        await rig.advance(60)
    assert len(rig.sent("head-bogor", "email")) == 1


async def test_late_events_reach_email_but_not_phones(rig: Rig) -> None:
    await rig.commit("ciliwung-depok", Level.SIAGA, rig.now, late=True)
    await rig.advance(30)
    assert rig.sent("duty-bogor", "telegram") == []
    (body,) = rig.sent("duty-bogor", "email")
    assert "TERLAMBAT" in body


async def test_failing_channel_retries_without_holding_up_the_other(rig: Rig) -> None:
    telegram = rig.channels[("duty-bogor", "telegram")]
    telegram.fail_next = [SendResult(False, True, "gateway 503"), SendResult(False, True, "503")]
    await rig.commit("ciliwung-depok", Level.SIAGA, rig.now)
    await rig.advance(30)
    assert len(rig.sent("duty-bogor", "email")) == 1
    statuses = {d.channel: d for d in await rig.store.deliveries()}
    assert statuses["telegram"].status == PENDING
    assert statuses["telegram"].last_error == "gateway 503"
    await rig.advance(10)
    await rig.advance(20)
    assert len(rig.sent("duty-bogor", "telegram")) == 1
    statuses = {d.channel: d for d in await rig.store.deliveries()}
    assert statuses["telegram"].status == DELIVERED
    assert statuses["telegram"].attempts == 3


async def test_permanent_failure_is_recorded_not_retried(rig: Rig) -> None:
    rig.channels[("duty-bogor", "email")].fail_next = [PermanentDeliveryError("550 no user")]
    await rig.commit("ciliwung-depok", Level.SIAGA, rig.now)
    await rig.advance(30)
    statuses = {d.channel: d for d in await rig.store.deliveries()}
    assert statuses["email"].status == FAILED
    assert statuses["email"].last_error == "550 no user"
    assert statuses["telegram"].status == DELIVERED


async def test_crash_while_sending_repeats_only_in_flight_with_the_same_id(rig: Rig) -> None:
    await rig.commit("ciliwung-depok", Level.SIAGA, rig.now)
    rig.now += 30 * S
    await rig.dispatcher.step()
    claimed = await rig.store.claim(rig.now, 1, 60 * S)  # a sender that then dies
    assert claimed[0].status == SENDING
    survivor = Rig(rig.policy, rig.store)
    survivor.now = rig.now + 61 * S
    await survivor.sender.step()
    ids = [m.id for ch in survivor.channels.values() for m in ch.sent]
    assert len(ids) == 2
    assert len(set(ids)) == 1  # one message id on both channels
    assert {d.status for d in await rig.store.deliveries()} == {DELIVERED}


async def test_dispatcher_restart_rebuilds_waiting_groups(rig: Rig) -> None:
    await rig.commit("ciliwung-depok", Level.SIAGA, rig.now)
    await rig.advance(10)
    restarted = Rig(rig.policy, rig.store)
    restarted.incidents = rig.incidents
    restarted.dispatcher = Dispatcher(
        rig.incidents,
        rig.store,
        lambda: rig.policy,
        lambda: REGISTRY,
        rig.settings,
        clock=lambda: restarted.now,
    )
    await restarted.dispatcher.start()
    restarted.now = rig.now
    await restarted.advance(20)
    assert len(restarted.sent("duty-bogor", "telegram")) == 1


async def test_policy_reload_keeps_the_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(POLICY)
    watcher = PolicyWatcher(path)
    assert len(watcher.current.recipients) == 3
    path.write_text(POLICY.replace("bpbd-bogor-head, members", "x, members"))
    with caplog.at_level(logging.WARNING):
        assert not watcher.check()
    assert "unknown groups" in caplog.text or "unknown" in caplog.text
    assert len(watcher.current.groups) == 3
    path.write_text(POLICY.replace("repeat_interval_s: 36000", "repeat_interval_s: 7200"))
    assert watcher.check()
    assert watcher.current.repeat_interval_s == 7200


def test_policy_silence_times_need_an_offset() -> None:
    naive = (
        POLICY
        + """
silences:
  - matchers: [{name: station, value: x}]
    starts: 2026-12-02T08:00:00
    ends: 2026-12-02T10:00:00+07:00
    created_by: ops
    comment: test
"""
    )
    with pytest.raises(PolicyError, match="UTC offset"):
        parse_policy(naive)


async def test_a_regency_policy_in_force_takes_its_regencys_notices_alone() -> None:
    store = MemoryNotifyStore()
    own = parse_regency_policy(
        "Tulang Bawang",
        {
            "recipients": [{"name": "piket", "channels": [{"name": "tg", "url": "json://x/tb"}]}],
            "groups": [{"name": "piket", "members": ["piket"]}],
            "default_groups": ["piket"],
        },
    )
    await store.save_regency_policy("Tulang Bawang", own, "tb-admin", T0)
    in_force = PolicyInForce()
    in_force.use({p.regency: p for p in await store.regency_policies()})
    rig = Rig(in_force(parse_policy(POLICY)), store)
    await rig.dispatcher.start()
    rig.incidents.transition("tb-menggala", Level.WASPADA, rig.now)
    rig.incidents.transition("jr-bedadung-kota", Level.WASPADA, rig.now)
    await rig.advance(0)
    await rig.advance(30)
    (body,) = rig.sent("tulang-bawang.piket", "tg")
    assert "Menggala" in body
    assert "Jember" not in body
    # The file's default still takes the regencies without a policy of their own.
    (other,) = rig.sent("duty-lampung", "telegram")
    assert "Menggala" not in other


async def test_the_notifier_follows_the_regencies_newest_policies() -> None:
    store = MemoryNotifyStore()
    in_force = PolicyInForce()
    following = asyncio.create_task(follow_regency_policies(store, in_force, 0.01))
    try:
        own = parse_regency_policy(
            "Jember",
            {
                "recipients": [{"name": "a", "channels": [{"name": "m", "url": "mailto://a@b"}]}],
                "groups": [{"name": "a", "members": ["a"]}],
            },
        )
        await store.save_regency_policy("Jember", own, "ana", T0)
        await eventually(lambda: "Jember" in in_force.regencies, 5, "the policy followed")
        await store.save_regency_policy("Jember", own, "budi", T0 + S)
        await eventually(lambda: in_force.regencies["Jember"].version == 2, 5, "version 2")
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
    assert in_force(Policy()).group("jember.a") is not None
