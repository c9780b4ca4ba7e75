"""A scripted Telegram Bot API server: the Bot API's JSON over real HTTP on a free port.

python-telegram-bot is pointed at it through ``telegram.api_base_url``. It speaks the methods
Siaga uses (getMe, sendMessage, editMessageText, answerCallbackQuery, getUpdates with offset and
long polling, deleteWebhook, setWebhook), keeps what it was sent, and lets a test press buttons
(as a chosen Telegram user), deliver an update twice, fail requests with 502, or go away
entirely (the server stops; the port refuses connections) and come back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN = "123456:TEST-token-for-the-scripted-server"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Siaga", "username": "siaga_test_bot"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Posted:
    """A message as the chat shows it now."""

    chat_id: str
    message_id: int
    text: str
    keyboard: list[list[dict[str, str]]]
    edits: int = 0


@dataclass
class TelegramPeer:
    """The server's state and the test's controls."""

    token: str = TOKEN
    port: int = field(default_factory=free_port)
    posts: dict[tuple[str, int], Posted] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    replays: list[dict[str, Any]] = field(default_factory=list)
    confirmed: int = 0
    fail_with_502: int = 0
    webhook: str | None = None
    _next_message: int = 100
    _next_update: int = 5000
    _next_callback: int = 1
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the HTTP side ----------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/bot{token}/{method}", self._method, methods=["POST"])])

    async def _method(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        if request.headers.get("content-type", "").startswith("application/json"):
            params = await request.json()
        else:
            params = {k: _value(v) for k, v in (await request.form()).items()}
        self.calls.append((method, params))
        if self.fail_with_502 > 0 and method != "getUpdates":
            self.fail_with_502 -= 1
            return _error(502, "Bad Gateway")
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        result: Any = await handler(params)
        if isinstance(result, JSONResponse):
            return result
        return JSONResponse({"ok": True, "result": result})

    async def _getMe(self, _params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        return BOT_USER

    async def _deleteWebhook(self, _params: dict[str, Any]) -> bool:  # noqa: N802
        self.webhook = None
        return True

    async def _setWebhook(self, params: dict[str, Any]) -> bool:  # noqa: N802
        self.webhook = str(params["url"])
        return True

    async def _sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        chat_id = str(params["chat_id"])
        self._next_message += 1
        markup = params.get("reply_markup") or {}
        post = Posted(
            chat_id, self._next_message, str(params["text"]), markup.get("inline_keyboard", [])
        )
        self.posts[(chat_id, post.message_id)] = post
        return self._message_json(post)

    async def _editMessageText(self, params: dict[str, Any]) -> Any:  # noqa: N802
        key = (str(params["chat_id"]), int(params["message_id"]))
        post = self.posts.get(key)
        if post is None:
            return _error(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup") or {}
        keyboard = markup.get("inline_keyboard", [])
        if post.text == params["text"] and post.keyboard == keyboard:
            return _error(400, "Bad Request: message is not modified")
        post.text = str(params["text"])
        post.keyboard = keyboard
        post.edits += 1
        return self._message_json(post)

    async def _answerCallbackQuery(self, params: dict[str, Any]) -> bool:  # noqa: N802
        self.answers.append(params)
        return True

    async def _getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:  # noqa: N802
        offset = int(params.get("offset") or 0)
        if offset:
            # Telegram forgets what an offset confirms.
            self.confirmed = max(self.confirmed, offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while not (self.updates or self.replays) and time.monotonic() < deadline:
            if self._stopping:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(deadline - time.monotonic()):
                    await self._arrived.wait()
        replays, self.replays = self.replays, []
        return replays + list(self.updates)

    def _message_json(self, post: Posted) -> dict[str, Any]:
        chat_type = "private" if not post.chat_id.startswith("-") else "supergroup"
        message: dict[str, Any] = {
            "message_id": post.message_id,
            "date": int(time.time()),
            "chat": {"id": int(post.chat_id), "type": chat_type, "title": "Piket"},
            "from": BOT_USER,
            "text": post.text,
        }
        if post.keyboard:
            message["reply_markup"] = {"inline_keyboard": post.keyboard}
        return message

    # -- the test's controls ----------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update (numbered now); returns it."""
        self._next_update += 1
        update = {"update_id": self._next_update, **update}
        self.updates.append(update)
        self._arrived.set()
        return update

    def redeliver(self, update: dict[str, Any]) -> None:
        """Deliver an update again with its own id, whatever the offset confirmed (what a bot
        sees when it handled an update but crashed before its offset was stored)."""
        self.replays.append(update)
        self._arrived.set()

    def press(
        self, post: Posted, button_text: str, user_id: int, name: str = "Budi"
    ) -> dict[str, Any]:
        """A press on one of a post's buttons by the Telegram user ``user_id``."""
        data = next(
            b["callback_data"] for row in post.keyboard for b in row if b["text"] == button_text
        )
        self._next_callback += 1
        return self.push(
            {
                "callback_query": {
                    "id": f"cb{self._next_callback}",
                    "from": {"id": user_id, "is_bot": False, "first_name": name},
                    "chat_instance": "ci-1",
                    "data": data,
                    "message": self._message_json(post),
                }
            }
        )

    def private_text(self, user_id: int, text: str) -> dict[str, Any]:
        """A text message to the bot in a private chat."""
        self._next_message += 1
        return self.push(
            {
                "message": {
                    "message_id": self._next_message,
                    "date": int(time.time()),
                    "chat": {"id": user_id, "type": "private", "first_name": "Budi"},
                    "from": {"id": user_id, "is_bot": False, "first_name": "Budi"},
                    "text": text,
                }
            }
        )

    def answers_to(self, update: dict[str, Any]) -> list[dict[str, Any]]:
        callback = update["callback_query"]["id"]
        return [a for a in self.answers if a["callback_query_id"] == callback]

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app(),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(), name="telegram-peer")
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Go away: the port refuses connections until :meth:`start`."""
        if self._server is None or self._task is None:
            return
        self._stopping = True
        self._server.should_exit = True
        self._arrived.set()
        await self._task
        self._server = None
        self._task = None
        self._stopping = False


def _value(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    if raw[:1] in "{[":
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _error(code: int, description: str) -> JSONResponse:
    return JSONResponse(
        {"ok": False, "error_code": code, "description": description}, status_code=code
    )
