"""Two-way Telegram: notices with buttons out, presses and link codes in (python-telegram-bot).

Out: :class:`TelegramChannel` is a channel like the others (the sender claims, retries and
records its deliveries); it posts the long form to a chat of ``telegram.chats`` with the buttons
"Akui", "Saya tangani" and "Bisukan 1 jam" for each firing incident, and remembers the post so
that it can be edited later.

In: :class:`TelegramBot` handles updates, from long polling (``getUpdates`` with an offset kept
in the database, so a restart neither loses nor replays updates; the default, it works behind
NAT) or from a webhook (``X-Telegram-Bot-Api-Secret-Token`` checked in constant time). A press
acts as the Siaga user linked to the presser's Telegram account (``/link CODE`` in a private
chat, with a one-time code from the API), is refused with a reason otherwise, and edits every
post of the incident to show who acknowledged it and when. An update is handled at most once
(its ``update_id`` is recorded with the new offset); an acknowledgement happens exactly once
even across a crash between the two (the incident store keeps the first).

Errors of the library are translated in one place, :func:`translate`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from alerts.notify.channels import DELIVERED, Outgoing, SendResult
from alerts.notify.chat import (
    BUTTONS,
    Action,
    IncidentActions,
    Press,
    SilenceBook,
    callback_data,
    parse_callback,
    status_lines,
)
from alerts.notify.chatstore import POSTS_KEPT_NS, ChatStore, Post, incident_ids
from alerts.notify.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from alerts.notify.responder import Responder
from alerts.settings import TelegramSettings
from devices.stations import StationRegistry

log = logging.getLogger(__name__)

CHANNEL = "telegram"
TEXT_MAX = 4096
MAX_INCIDENT_ROWS = 4
OFFSET_KEY = "telegram.offset"
_TELEGRAM = TelegramSettings.model_fields  # the settings tree: one source of defaults

Keyboard = list[list[tuple[str, str]]]
View = Callable[[str, Sequence[int]], Awaitable[tuple[str, Keyboard]]]


def translate(exc: TelegramError) -> DeliveryError:
    """The library's error as Siaga's: retryable (network, 5xx, flood control) or not."""
    if isinstance(exc, RetryAfter):
        with warnings.catch_warnings():
            # int today, timedelta in a future major version (either is read below)
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            after = exc.retry_after
        seconds = after if isinstance(after, int | float) else after.total_seconds()
        return RetryableDeliveryError(
            f"telegram: flood control, {seconds:g} s", retry_after_s=seconds
        )
    if isinstance(exc, TimedOut | NetworkError) and not isinstance(exc, BadRequest):
        return RetryableDeliveryError(f"telegram: {type(exc).__name__}: {exc.message}")
    if isinstance(exc, Conflict):
        return RetryableDeliveryError(f"telegram: conflict: {exc.message}")
    if isinstance(exc, InvalidToken | Forbidden | BadRequest | ChatMigrated):
        return PermanentDeliveryError(f"telegram: {type(exc).__name__}: {exc.message}")
    return RetryableDeliveryError(f"telegram: {type(exc).__name__}: {exc.message}")


def keyboard(incidents: Sequence[int], acknowledged: Sequence[int] = ()) -> Keyboard:
    """The buttons of a post: one incident gets two rows, several get one row each (at most 4).

    An acknowledged incident keeps "Saya tangani" and "Bisukan 1 jam" only.
    """
    rows: Keyboard = []
    shown = list(incidents)[:MAX_INCIDENT_ROWS]
    for incident_id in shown:
        actions = [a for a in Action if not (a is Action.ACK and incident_id in acknowledged)]
        buttons = [
            (
                BUTTONS[a] if len(shown) == 1 else f"{BUTTONS[a].split()[0]} #{incident_id}",
                callback_data(Press(a, incident_id)),
            )
            for a in actions
        ]
        if len(shown) == 1 and len(buttons) == 3:
            rows.extend([buttons[:2], buttons[2:]])  # three labels in one row are cut at 360 px
        else:
            rows.append(buttons)
    return rows


def markup(rows: Keyboard) -> InlineKeyboardMarkup | None:
    """The library's form of :func:`keyboard`."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(text, callback_data=data) for text, data in row] for row in rows]
    )


def fit(text: str) -> str:
    """A text within Telegram's 4096 characters."""
    return text if len(text) <= TEXT_MAX else text[: TEXT_MAX - 1] + "\u2026"


class TelegramApi:
    """The Bot API through python-telegram-bot, with every error translated.

    Args:
        token: The bot's token.
        base_url: ``https://api.telegram.org`` (tests: their scripted server).
        timeout_s: Connect/read/write timeout of ordinary calls.
        poll_timeout_s: The long poll; its request waits that much longer.
    """

    def __init__(
        self,
        token: SecretStr,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        poll_timeout_s: int = _TELEGRAM["poll_timeout_s"].default,
    ) -> None:
        base = base_url.rstrip("/")
        self.poll_timeout_s = poll_timeout_s
        self.bot = Bot(
            token.get_secret_value(),
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=HTTPXRequest(
                connection_pool_size=16,
                connect_timeout=timeout_s,
                read_timeout=timeout_s,
                write_timeout=timeout_s,
            ),
            get_updates_request=HTTPXRequest(
                connection_pool_size=1,
                connect_timeout=timeout_s,
                read_timeout=poll_timeout_s + timeout_s,
            ),
        )
        self._ready = False

    def __repr__(self) -> str:
        return "TelegramApi(<token hidden>)"

    async def _call(self, function: Callable[[], Any]) -> Any:
        try:
            if not self._ready:
                await self.bot.initialize()
                self._ready = True
            return await function()
        except TelegramError as exc:
            raise translate(exc) from None

    async def send(self, chat_id: str, text: str, rows: Keyboard) -> int:
        """Post a message; its ``message_id``."""
        message = await self._call(
            lambda: self.bot.send_message(chat_id, fit(text), reply_markup=markup(rows))
        )
        return int(message.message_id)

    async def edit(self, chat_id: str, message_id: int, text: str, rows: Keyboard) -> None:
        """Replace a post's text and buttons (unchanged text is not an error)."""
        try:
            await self._call(
                lambda: self.bot.edit_message_text(
                    fit(text), chat_id=chat_id, message_id=message_id, reply_markup=markup(rows)
                )
            )
        except PermanentDeliveryError as exc:
            if "not modified" not in str(exc):
                raise

    async def answer(self, callback_id: str, text: str, *, alert: bool) -> None:
        """Answer a press (a toast, or a dialog when ``alert``)."""
        await self._call(
            lambda: self.bot.answer_callback_query(callback_id, text=text[:200], show_alert=alert)
        )

    async def reply(self, chat_id: int, text: str) -> None:
        """Send plain text (answers to /link)."""
        await self._call(lambda: self.bot.send_message(chat_id, fit(text)))

    async def updates(self, offset: int | None) -> tuple[Update, ...]:
        """Long-poll ``getUpdates`` from ``offset`` (messages and presses only)."""
        result: tuple[Update, ...] = await self._call(
            lambda: self.bot.get_updates(
                offset=offset,
                timeout=self.poll_timeout_s,
                allowed_updates=["message", "callback_query"],
            )
        )
        return result

    async def use_polling(self) -> None:
        """Remove any webhook (``getUpdates`` is refused while one is set), keeping updates."""
        await self._call(lambda: self.bot.delete_webhook(drop_pending_updates=False))

    async def use_webhook(self, url: str, secret: str) -> None:
        """Have Telegram post updates to ``url`` with ``secret`` in the header."""
        await self._call(
            lambda: self.bot.set_webhook(
                url, secret_token=secret, allowed_updates=["message", "callback_query"]
            )
        )

    def update(self, data: dict[str, Any]) -> Update | None:
        """A webhook body as an update (None when it is not one)."""
        try:
            return Update.de_json(data, self.bot)
        except (KeyError, TypeError, ValueError):
            return None

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        if self._ready:
            with contextlib.suppress(TelegramError):
                await self.bot.shutdown()


class TelegramChannel:
    """Posts notices to one chat, with buttons; a channel of the sender.

    Args:
        name: The channel's name in the policy.
        chat_id: Where to post.
        api: The Bot API.
        store: Where posts are remembered.
        view: How a post looks now (:meth:`TelegramBot.view`): a notice sent late, after its
            incident was acknowledged by SMS or in the web UI, says so and has no "Akui".
        clock: Nanoseconds since the epoch.
    """

    pages = True

    def __init__(
        self,
        name: str,
        chat_id: str,
        api: TelegramApi,
        store: ChatStore,
        *,
        view: View | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.name = name
        self.chat_id = chat_id
        self._api = api
        self._store = store
        self._view = view
        self._clock = clock

    async def send(self, message: Outgoing) -> SendResult:
        """Post the long form with the buttons of its firing incidents."""
        alerts = [
            a
            for a in message.payload.get("alerts", [])
            if isinstance(a, dict) and a.get("firing") and a.get("state") == "firing"
        ]
        incidents = incident_ids(alerts)
        text = fit(message.body)
        shown, rows = (text, keyboard(incidents))
        if self._view is not None:
            shown, rows = await self._view(text, incidents)
        message_id = await self._api.send(self.chat_id, shown, rows)
        await self._store.add_post(
            Post(self.chat_id, message_id, message.delivery_id, incidents, text, self._clock())
        )
        return DELIVERED


class TelegramBot(Responder):
    """Handles updates: presses on posts and ``/link CODE`` (see the module doc).

    Args:
        api: The Bot API.
        store: Links, codes, posts, handled updates and the offset.
        incidents: The incident store.
        silences: The notification store.
        settings: The ``telegram`` settings.
        registry: Stations (each incident's time zone).
        clock: Nanoseconds since the epoch.
        is_leader: Only the leader polls (Telegram refuses two pollers of one bot).
    """

    def __init__(
        self,
        api: TelegramApi,
        store: ChatStore,
        incidents: IncidentActions,
        silences: SilenceBook,
        *,
        settings: TelegramSettings,
        registry: Callable[[], StationRegistry],
        clock: Callable[[], int] = time.time_ns,
        is_leader: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(
            store, incidents, silences, registry=registry, clock=clock, is_leader=is_leader
        )
        self.api = api
        self._settings = settings
        self._chats = {str(c) for c in settings.chats.values()}
        self.polling = asyncio.Event()

    async def handle(self, update: Update) -> None:
        """Handle one update at most once (its id recorded with the next offset).

        Raises:
            RetryableDeliveryError: Telegram did not take the answer; the update stays
                unhandled and comes again.
        """
        key = str(update.update_id)
        if await self._store.handled(CHANNEL, key):
            self.counts["replayed"] += 1
            return
        try:
            if update.callback_query is not None:
                await self._press(update)
            elif update.message is not None and update.message.text:
                await self._message(update)
            else:
                self.counts["ignored"] += 1
        except RetryableDeliveryError:
            raise
        except DeliveryError as exc:  # a refused answer must not block the updates behind it
            self.counts["answer_failed"] += 1
            log.warning("telegram update %s: answer refused: %s", key, exc)
        await self._store.mark_handled(
            CHANNEL, key, self._clock(), {OFFSET_KEY: str(update.update_id + 1)}
        )

    async def _press(self, update: Update) -> None:
        query = update.callback_query
        assert query is not None
        chat = query.message.chat.id if query.message is not None else None
        press = parse_callback(query.data)
        if chat is None or str(chat) not in self._chats:
            self.counts["foreign_chat"] += 1
            await self.api.answer(query.id, "Pesan ini bukan dari obrolan Siaga.", alert=True)
            return
        if press is None:
            self.counts["unknown_button"] += 1
            await self.api.answer(query.id, "Tombol ini tidak dikenal.", alert=True)
            return
        person = await self._store.person(CHANNEL, str(query.from_user.id))
        outcome = await self.carry_out(
            press,
            person,
            via=CHANNEL,
            least_role=self._settings.act_role,
            silence_s=self._settings.silence_s,
        )
        await self.api.answer(query.id, outcome.answer, alert=outcome.refused)
        if outcome.changed and outcome.incident is not None:
            await self.refresh(outcome.incident.id)

    async def view(self, text: str, ids: Sequence[int]) -> tuple[str, Keyboard]:
        """A post as it should look now: its text with who acknowledged, handles and silenced
        each of its incidents, and the buttons still useful (no "Akui" once acknowledged)."""
        found = [await self._incidents.get(i) for i in ids]
        carried = [i for i in found if i is not None]
        zone = self._zone(carried[0] if carried else None)
        now = self._clock()
        lines = status_lines(
            carried,
            zone,
            numbered=len(carried) > 1,
            silences=await self._silences.silences(now),
            now_ns=now,
        )
        shown = text if not lines else f"{text}\n\n" + "\n".join(lines)
        acknowledged = [i.id for i in carried if i.acknowledged is not None]
        return fit(shown), keyboard(ids, acknowledged)

    async def refresh(self, incident_id: int) -> None:
        """Edit every recent post of an incident to show who acknowledged and handles it."""
        now = self._clock()
        for post in await self._store.posts_for(incident_id, now - POSTS_KEPT_NS):
            text, rows = await self.view(post.text, post.incidents)
            await self.api.edit(post.chat_id, post.message_id, text, rows)
            self.counts["edited"] += 1

    async def _message(self, update: Update) -> None:
        message = update.message
        assert message is not None
        assert message.text is not None
        command, _, argument = message.text.strip().partition(" ")
        command = command.split("@", 1)[0].lower()
        if command not in {"/link", "/start"}:
            self.counts["ignored"] += 1
            return
        if message.chat.type != "private":
            await self.api.reply(
                message.chat.id, "Kirim kode lewat pesan pribadi ke bot ini, bukan di grup."
            )
            return
        if not argument.strip() or message.from_user is None:
            await self.api.reply(
                message.chat.id,
                "Untuk menghubungkan akun: buat kode di halaman Profil Siaga (/profil), "
                "lalu kirim /link KODE.",
            )
            return
        username = await self._store.redeem_code(
            CHANNEL, argument.strip(), str(message.from_user.id), self._clock()
        )
        self.counts["linked" if username else "bad_code"] += 1
        await self.api.reply(
            message.chat.id,
            f"Terhubung: akun Telegram ini bertindak sebagai {username} di Siaga."
            if username
            else "Kode tidak berlaku (salah, sudah dipakai, atau kedaluwarsa). Minta kode baru.",
        )

    async def poll(self) -> None:
        """Long-poll while leading, until cancelled; back off while Telegram is unreachable."""
        stored = await self._store.state(OFFSET_KEY)
        offset = int(stored) if stored else None
        failures = 0
        prepared = False
        while True:
            if not self._is_leader():
                self.polling.clear()
                await asyncio.sleep(1.0)
                continue
            try:
                if not prepared:
                    await self.api.use_polling()
                    prepared = True
                self.polling.set()
                updates = await self.api.updates(offset)
                for update in updates:
                    await self.handle_safely(update)
                    offset = update.update_id + 1
                failures = 0
            except RetryableDeliveryError as exc:
                failures += 1
                self.counts["poll_failed"] += 1
                wait = min(self._settings.poll_retry_max_s, 0.5 * 2 ** min(failures, 10))
                if failures == 1:
                    log.warning("telegram unreachable, retrying (%s)", exc)
                await asyncio.sleep(wait)
            except PermanentDeliveryError as exc:
                log.error("telegram refuses the bot: %s; retrying in a minute", exc)
                await asyncio.sleep(60.0)

    async def handle_safely(self, update: Update) -> None:
        try:
            await self.handle(update)
        except RetryableDeliveryError:
            raise
        except Exception:  # bad input never kills the loop; it is skipped, counted and logged
            self.counts["failed"] += 1
            log.exception("telegram update %s could not be handled; skipped", update.update_id)
            await self._store.mark_handled(
                CHANNEL,
                str(update.update_id),
                self._clock(),
                {OFFSET_KEY: str(update.update_id + 1)},
            )


def secret_matches(expected: SecretStr | None, given: str | None) -> bool:
    """Whether a webhook request carries the secret token (constant time)."""
    if expected is None or not expected.get_secret_value() or given is None:
        return False
    return hmac.compare_digest(expected.get_secret_value().encode(), given.encode())


def webhook_app(bot: TelegramBot, secret: SecretStr | None) -> Starlette:
    """The webhook endpoint ``POST /telegram``: refuses requests without the secret token (403),
    answers 503 when the update could not be handled yet (Telegram sends it again)."""

    async def receive(request: Request) -> Response:
        if not secret_matches(secret, request.headers.get("x-telegram-bot-api-secret-token")):
            bot.counts["webhook_forbidden"] += 1
            return PlainTextResponse("forbidden", status_code=403)
        try:
            data = await request.json()
        except ValueError:
            return PlainTextResponse("not JSON", status_code=400)
        update = bot.api.update(data) if isinstance(data, dict) else None
        if update is None:
            bot.counts["webhook_bad"] += 1
            return PlainTextResponse("not an update", status_code=400)
        try:
            await bot.handle_safely(update)
        except RetryableDeliveryError:
            return PlainTextResponse("try again", status_code=503)
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/telegram", receive, methods=["POST"])])


async def serve_webhook(bot: TelegramBot, settings: TelegramSettings) -> None:
    """Register the webhook with Telegram and serve it until cancelled."""
    if not settings.webhook_url or settings.webhook_secret is None:
        raise PermanentDeliveryError("telegram webhook mode needs webhook_url and webhook_secret")
    server = uvicorn.Server(
        uvicorn.Config(
            webhook_app(bot, settings.webhook_secret),
            host=settings.webhook_host,
            port=settings.webhook_port,
            log_level="warning",
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve(), name="telegram.webhook.server")
    try:
        while True:
            try:
                await bot.api.use_webhook(
                    settings.webhook_url, settings.webhook_secret.get_secret_value()
                )
                break
            except RetryableDeliveryError as exc:
                log.warning("telegram setWebhook failed, retrying: %s", exc)
                await asyncio.sleep(settings.poll_retry_max_s)
        await serving
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
