"""Real peers for notification tests: an SMTP server (aiosmtpd) and an HTTP webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from alerts.notify.webhook import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from ops.servers import free_port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[Envelope] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        with self.lock:
            self.envelopes.append(envelope)
            content = envelope.original_content or b""
            self.messages.append(message_from_bytes(content))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, _Inbox]]:
    """A real SMTP server on a free port; yields (port, inbox)."""
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@dataclass
class Received:
    """One HTTP request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A real HTTP server that checks Siaga's webhook signature.

    ``statuses`` are answered in turn (then 200); ``hold`` makes it wait before answering
    (a request in flight), until ``release`` is set.
    """

    secret: bytes
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    hold: threading.Event | None = None
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    def accepted(self) -> list[Received]:
        """Requests answered 2xx with a valid signature (or no signature expected)."""
        with self.lock:
            return [r for r in self.received if r.signature_ok is not False]

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        """Serve in a thread."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                signature = self.headers.get(SIGNATURE_HEADER)
                ok = None if signature is None else verify(receiver.secret, body, signature)
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.hold is not None:
                    receiver.hold.set()
                    receiver.release.wait(30)
                if status < 300 and ok is not False:
                    with receiver.lock:
                        receiver.received.append(
                            Received(self.path, dict(self.headers.items()), body, ok)
                        )
                self.send_response(status if ok is not False else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release.set()
            server.shutdown()
            server.server_close()


HEADERS = (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
