"""Notifications inside a process: the named tasks ``siaga alerts run`` starts.

:func:`notification_companions` builds the named tasks: ``notify.policy`` (hot reload),
``notify.regency-policies``, ``notify.dispatch``, ``notify.send``, ``notify.fallback``, and
``notify.telegram`` and ``notify.sms`` when enabled. Dispatch, sending and fallback act only
while ``is_leader()`` is true, so on a standby pair only the leader sends. :func:`run_notifier`
runs them alone (``siaga alerts notify``), for deployments and tests that keep the notifier in
its own process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from alerts.model import Transition
from alerts.notify.acklink import signed_ack_links
from alerts.notify.channelbook import ChannelBook, Unavailable
from alerts.notify.channels import Channel
from alerts.notify.chat import IncidentActions, SilenceBook
from alerts.notify.chatstore import ChatStore, SqlChatStore
from alerts.notify.dispatcher import Dispatcher, IncidentSource
from alerts.notify.errors import NotifyError
from alerts.notify.fallback import FallbackWatch
from alerts.notify.gammu_sms import GammuModem, Modem, SmsChannel, SmsInbox
from alerts.notify.message import AckLink, no_ack_link
from alerts.notify.policy import ChannelSpec, Policy, PolicyWatcher
from alerts.notify.regency_policy import PolicyInForce
from alerts.notify.sender import Sender
from alerts.notify.sqlstore import SqlNotifyStore
from alerts.notify.store import NotifyStore
from alerts.notify.telegram import TelegramApi, TelegramBot, TelegramChannel, serve_webhook
from alerts.settings import Settings
from devices.stations import StationRegistry, load_stations

log = logging.getLogger(__name__)


def settings_ack_link(settings: Settings) -> AckLink:
    """Signed one-click links when ``api.public_url`` is set, signed with the API's key
    (``api.secret_key``, else ``api.secret_key_file``); else messages name the command."""
    base_url = settings.api.public_url
    if not base_url:
        return no_ack_link
    return signed_ack_links(
        base_url, settings.api.resolve_secret_key(), settings.notify.ack_link_valid_s
    )


@dataclass(slots=True)
class Notifier:
    """The running pieces, for metrics and tests."""

    policy: PolicyWatcher
    dispatcher: Dispatcher
    sender: Sender
    telegram: TelegramBot | None = None
    sms: SmsInbox | None = None
    fallback: FallbackWatch | None = None


@dataclass(slots=True)
class Companions:
    """The notifier as companion tasks of another process, and its commit hook."""

    tasks: dict[str, Callable[[], Coroutine[Any, Any, None]]]
    notifier: Notifier

    def on_commit(self, _transitions: Sequence[Transition], _committed_ns: int) -> None:
        """A commit observer: the dispatcher looks at the outbox at once."""
        self.notifier.dispatcher.wake()

    def start(self, tasks: asyncio.TaskGroup) -> Notifier:
        """Start every task in ``tasks`` (a process that runs the notifier alone)."""
        for name, start in self.tasks.items():
            tasks.create_task(start(), name=name)
        return self.notifier


def notification_companions(
    settings: Settings,
    *,
    incidents: IncidentSource,
    store: NotifyStore,
    client: httpx.AsyncClient,
    registry: Callable[[], StationRegistry],
    is_leader: Callable[[], bool] = lambda: True,
    ack_link: AckLink | None = None,
    actions: IncidentActions | None = None,
    chat_store: ChatStore | None = None,
    modem: Modem | None = None,
) -> Companions:
    """The notification tasks as named coroutine factories, with a commit observer that
    wakes the dispatcher: ``siaga alerts run`` starts them as its companions,
    :func:`run_notifier` with :meth:`Companions.start`.

    Args:
        settings: The settings (``notify`` section).
        incidents: The incident store (its outbox and active incidents).
        store: The notification store (usually :class:`SqlNotifyStore` on the same database).
        client: The HTTP client webhooks use (its lifetime is the caller's).
        registry: The station registry in force (hot reload swaps it).
        is_leader: Only the leader dispatches and sends.
        ack_link: Builds one-click acknowledgement links (default: signed links from the
            ``notify`` settings, or none).
        actions: The incident store's acknowledge/assign (two-way channels act through it).
        chat_store: Where two-way channels keep links and posts (default: the database).
        modem: The GSM modem (default: Gammu on ``sms.gammu_device`` when ``sms.enabled``).

    Raises:
        PolicyError: The policy file is invalid at start.
    """
    watcher = PolicyWatcher(Path(settings.notify.policy_file))
    in_force = PolicyInForce()

    def policy() -> Policy:
        return in_force(watcher.current)

    dispatcher = Dispatcher(
        incidents,
        store,
        policy,
        registry,
        settings.notify,
        ack_link=ack_link or settings_ack_link(settings),
        is_leader=is_leader,
    )
    book = ChannelBook(client, timeout_s=settings.notify.webhook_timeout_s)
    sender = Sender(store, book, policy, settings.notify, is_leader=is_leader)
    dispatcher.on_deliveries = sender.wake
    tasks: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "notify.policy": lambda: watcher.run(settings.notify.policy_reload_s),
        "notify.regency-policies": lambda: follow_regency_policies(
            store, in_force, settings.notify.policy_reload_s
        ),
        "notify.dispatch": dispatcher.run,
        "notify.send": sender.run,
    }
    notifier = Notifier(watcher, dispatcher, sender)
    notifier.fallback = FallbackWatch(
        store,
        policy,
        deadline_s=settings.notify.delivery_deadline_s,
        on_deliveries=sender.wake,
        is_leader=is_leader,
        interval_s=settings.notify.fallback_check_s,
    )
    tasks["notify.fallback"] = notifier.fallback.run
    two_way = settings.telegram.enabled or settings.sms.enabled or modem is not None
    if two_way and actions is None:
        log.warning("telegram/sms: no incident store to act on; they are not started")
        return Companions(tasks=tasks, notifier=notifier)
    chats = chat_store or (SqlChatStore(settings.database.url) if two_way else None)
    if (settings.sms.enabled or modem is not None) and actions is not None and chats is not None:
        used = modem or GammuModem(
            settings.sms.gammu_device, settings.sms.gammu_connection, settings.sms.gammu_model
        )
        book.kinds["sms"] = lambda spec: SmsChannel(spec.name, spec.url, used)
        notifier.sms = SmsInbox(
            used,
            chats,
            actions,
            store,
            settings=settings.sms,
            registry=registry,
            is_leader=is_leader,
        )
        tasks["notify.sms"] = lambda: run_sms(notifier.sms, used)
    if settings.telegram.enabled and actions is not None and chats is not None:
        notifier.telegram = telegram_bot(
            settings,
            book,
            chats=chats,
            actions=actions,
            silences=store,
            registry=registry,
            is_leader=is_leader,
        )
        tasks["notify.telegram"] = lambda: run_telegram(notifier.telegram, settings)
    return Companions(tasks=tasks, notifier=notifier)


def telegram_bot(
    settings: Settings,
    book: ChannelBook,
    *,
    chats: ChatStore,
    actions: IncidentActions,
    silences: SilenceBook,
    registry: Callable[[], StationRegistry],
    is_leader: Callable[[], bool],
) -> TelegramBot:
    """The bot, and the ``telegram`` channel type registered in ``book``."""
    config = settings.telegram
    assert config.bot_token is not None
    api = TelegramApi(config.bot_token, config.api_base_url, poll_timeout_s=config.poll_timeout_s)

    bot = TelegramBot(
        api,
        chats,
        actions,
        silences,
        settings=config,
        registry=registry,
        is_leader=is_leader,
    )

    def channel(spec: ChannelSpec) -> Channel:
        chat_id = config.chats.get(spec.url)
        if chat_id is None:
            return Unavailable(spec.name, f"chat {spec.url!r} is not in telegram.chats")
        return TelegramChannel(spec.name, chat_id, api, chats, view=bot.view)

    book.kinds["telegram"] = channel
    return bot


async def run_sms(inbox: SmsInbox | None, modem: Modem) -> None:
    """Read replies until cancelled, then release the modem."""
    assert inbox is not None
    try:
        await inbox.run()
    finally:
        if isinstance(modem, GammuModem):
            await asyncio.to_thread(modem.close)


async def run_telegram(bot: TelegramBot | None, settings: Settings) -> None:
    """Poll (or serve the webhook) until cancelled, then close the bot's HTTP clients."""
    assert bot is not None
    try:
        if settings.telegram.mode == "webhook":
            await serve_webhook(bot, settings.telegram)
        else:
            await bot.poll()
    finally:
        await bot.api.aclose()


async def follow_regency_policies(
    store: NotifyStore, in_force: PolicyInForce, interval_s: float
) -> None:
    """Read the regencies' newest policies every ``interval_s`` (their admins edit them through
    the API); a failed read keeps the versions in force and is logged, never fatal."""
    while True:
        try:
            found = await store.regency_policies()
        except NotifyError as exc:
            in_force.failures += 1
            log.warning("regency policies not read, keeping those in force: %s", exc)
        else:
            in_force.use({p.regency: p for p in found})
        await asyncio.sleep(interval_s)


async def run_notifier(settings: Settings) -> None:
    """Run the notifier alone against the incident database until cancelled.

    Leadership: PostgreSQL's advisory lock ``siaga-notify``; on SQLite a lock file beside the
    database (``<db>.notify.lock``). Only the holder dispatches and sends.
    """
    from alerts.incidents.database import FileLock, sqlite_path, wait_to_lead  # noqa: PLC0415
    from alerts.incidents.store import SqlIncidentStore  # noqa: PLC0415

    registry = load_stations(Path(settings.stations.file))
    database = sqlite_path(settings.database.url)
    poll_s = settings.alerts.leader_poll_s
    async with (
        SqlIncidentStore(settings.database.url, lock_name="siaga-notify") as incidents,
        SqlNotifyStore(settings.database.url) as store,
        httpx.AsyncClient() as client,
        asyncio.TaskGroup() as tasks,
    ):
        if database is not None:
            # The incident store's own SQLite lock belongs to the engine; the notifier takes
            # its own, so one notifier sends per database beside one engine.
            path = database.with_name(database.name + ".notify.lock")
            held = FileLock(path)  # until the process ends
            await wait_to_lead(
                held.try_take,
                standby=f"another notifier leads ({path}); standing by",
                leading=f"notifier leading: holding {path}",
                poll_s=poll_s,
            )

            def is_leader() -> bool:
                return True
        else:
            await incidents.lead(poll_s)

            def is_leader() -> bool:
                return incidents.leading

        notification_companions(
            settings,
            incidents=incidents,
            store=store,
            client=client,
            registry=lambda: registry,
            is_leader=is_leader,
            actions=incidents,
        ).start(tasks)
