"""The notifier as the tests of two-way channels run it: a real incident in SQLite, the real
wiring (``notification_companions``), a scripted Telegram server and, when given, a modem."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from alerts.engine import Engine
from alerts.incidents.database import create_sql_engine
from alerts.incidents.store import SqlIncidentStore
from alerts.notify.chatstore import SqlChatStore
from alerts.notify.gammu_sms import Modem
from alerts.notify.runtime import Companions, notification_companions
from alerts.notify.sqlstore import SqlNotifyStore
from alerts.settings import Settings
from dashboards.api.accounts import Accounts, Role
from devices.scopes import Scope
from tests.alerting import T0, level, registry, station
from tests.helpers import eventually
from tests.integration.telegram_peer import TOKEN, Posted, TelegramPeer

CHAT = "-1001234567"
BUDI, TAMU, EKO, STRANGER = 7001, 7002, 7003, 7999
REGISTRY = registry(station("tb-menggala", regency="Tulang Bawang", river="Way Tulang Bawang"))
POLICY = """
recipients:
  - name: piket
    channels: [{name: tg, type: telegram, url: piket-tb}]
groups: [{name: piket, members: [piket]}]
default_groups: [piket]
group_wait_s: 0
group_interval_s: 0.2
"""


@dataclass
class Rig:
    peer: TelegramPeer
    settings: Settings
    incidents: SqlIncidentStore
    notify: SqlNotifyStore
    chats: SqlChatStore
    companions: Companions | None = None
    task: asyncio.Task[None] | None = None
    modem: Modem | None = None

    async def start(self) -> None:
        async with httpx.AsyncClient() as client:
            self.companions = notification_companions(
                self.settings,
                incidents=self.incidents,
                store=self.notify,
                client=client,
                registry=lambda: REGISTRY,
                actions=self.incidents,
                chat_store=self.chats,
                modem=self.modem,
            )
        tasks = self.companions.tasks

        async def run() -> None:
            async with asyncio.TaskGroup() as group:
                for name, start in tasks.items():
                    group.create_task(start(), name=name)

        self.task = asyncio.create_task(run(), name="notifier")
        bot = self.companions.notifier.telegram
        assert bot is not None
        await eventually(bot.polling.is_set, 10, "the bot polling")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def flood(self) -> int:
        """Menggala past Awas: one incident, committed with its outbox row."""
        engine = Engine(REGISTRY, started_ns=T0)
        readings = [level("tb-menggala", m, v) for m, v in ((0, 310), (10, 312))]
        step = engine.process(readings, readings[-1].ts_ns)
        assert step.transitions
        labels = {"tb-menggala": {"regency": "Tulang Bawang", "river": "Way Tulang Bawang"}}
        await self.incidents.commit(step.transitions, {}, labels)
        assert self.companions is not None
        self.companions.notifier.dispatcher.wake()
        (incident,) = await self.incidents.list()
        return incident.id

    async def link(self, user_id: int, username: str) -> None:
        code = await self.chats.issue_code("telegram", username, T0, 600)
        await self.chats.redeem_code("telegram", code, str(user_id), T0)

    def notices(self) -> list[Posted]:
        return [p for p in self.peer.posts.values() if p.chat_id == CHAT]

    async def post(self) -> Posted:
        await eventually(lambda: len(self.notices()) == 1, 15, "the notice posted")
        (post,) = self.notices()
        return post


@contextlib.asynccontextmanager
async def notifier_rig(
    tmp_path: Path, policy_text: str = POLICY, modem: Modem | None = None, **sections: Any
) -> AsyncIterator[Rig]:
    """A rig on a fresh SQLite database with users budi (operator) and tamu (viewer)."""
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    policy = tmp_path / "alerts.yaml"
    policy.write_text(policy_text)
    peer = TelegramPeer()
    await peer.start()
    settings = Settings(
        database={"url": url},
        notify={
            "policy_file": str(policy),
            "tick_s": 0.02,
            "retry_initial_s": 0.05,
            "retry_max_s": 0.3,
            "lease_s": 10,
            **sections.pop("notify", {}),
        },
        telegram={
            "bot_token": TOKEN,
            "api_base_url": peer.base_url,
            "chats": {"piket-tb": CHAT},
            "poll_timeout_s": 1,
            "poll_retry_max_s": 0.3,
        },
        **sections,
    )
    async with SqlIncidentStore(url) as incidents, SqlNotifyStore(url) as notify:
        accounts = Accounts(create_sql_engine(url))
        accounts.add_user("budi", Role.OPERATOR, "budi-password-1", T0)
        accounts.add_user("tamu", Role.VIEWER, "tamu-password-1", T0)
        # An operator of another regency: may act in Jember only.
        accounts.add_user("eko", Role.OPERATOR, "eko-password-12", T0, Scope.of(["Jember"]))
        chats = SqlChatStore(url)
        rig = Rig(peer, settings, incidents, notify, chats, modem=modem)
        try:
            yield rig
        finally:
            await rig.stop()
            await peer.stop()
            await chats.aclose()
            accounts.engine.dispose()
