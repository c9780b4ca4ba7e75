"""The demo's local inbox is a real SMTP server that keeps each message it acknowledged."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from pathlib import Path

from ops.inbox import count_messages, serve
from ops.servers import free_port, port_open
from tests.helpers import eventually


async def test_a_message_sent_over_smtp_is_kept_with_a_log_line(tmp_path: Path) -> None:
    port = free_port()
    server = asyncio.create_task(serve(tmp_path, port))
    try:
        await eventually(lambda: port_open(port), 10, "the inbox to listen")
        message = EmailMessage()
        message["From"] = "siaga@localhost"
        message["To"] = "piket@bpbd.localhost"
        message["Subject"] = "AWAS: Way Tulang Bawang di Menggala 432 cm"
        message.set_content("Segera evakuasi warga bantaran sungai.")

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.send_message(message)

        await asyncio.to_thread(send)
        assert count_messages(tmp_path) == 1
        log = (tmp_path / "inbox.log").read_text(encoding="utf-8")
        assert "piket@bpbd.localhost" in log
        assert "AWAS: Way Tulang Bawang di Menggala 432 cm" in log
        (kept,) = tmp_path.glob("*.eml")  # noqa: ASYNC240 - a test reading its temp dir
        assert b"Segera evakuasi" in kept.read_bytes()
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
