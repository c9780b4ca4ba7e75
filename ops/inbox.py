"""A local e-mail inbox for ``siaga up``: a real SMTP server that keeps what it receives.

The demo's notifications go out through the same channel code as production e-mail (Apprise's
``mailto://``) and land here, each as an ``.eml`` file, with one line per message in
``inbox.log`` (time, recipients, subject) for people and for the status of ``siaga up``.

Run as ``python -m ops.inbox --dir DIR --port PORT``; it serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import signal
import time
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

LOG_NAME = "inbox.log"


def subject_of(raw: bytes) -> str:
    """A message's decoded subject line (empty when it has none)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    subject = message.get("Subject", "")
    return str(make_header(decode_header(subject))).replace("\n", " ").strip()


class InboxHandler:
    """Keeps every message it receives as a file and a log line."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.received = 0
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Store one message; 250 only once it is on disk."""
        raw = envelope.original_content or b""
        self.received += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.directory / f"{stamp}-{self.received:06d}.eml"
        path.write_bytes(raw)
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\t"
        line += f"{','.join(envelope.rcpt_tos)}\t{subject_of(raw)}\t{path.name}\n"
        with (self.directory / LOG_NAME).open("a", encoding="utf-8") as log:
            log.write(line)
        return "250 Message accepted for delivery"


def count_messages(directory: Path) -> int:
    """How many messages the inbox holds."""
    try:
        with (directory / LOG_NAME).open(encoding="utf-8") as log:
            return sum(1 for _ in log)
    except FileNotFoundError:
        return 0


async def serve(directory: Path, port: int, host: str = "127.0.0.1") -> None:
    """Serve until SIGTERM or SIGINT."""
    controller = Controller(InboxHandler(directory), hostname=host, port=port)
    controller.start()
    print(f"inbox: SMTP on {host}:{port}, messages in {directory}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        controller.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m ops.inbox --dir DIR --port PORT``."""
    parser = argparse.ArgumentParser(prog="python -m ops.inbox")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    arguments: Any = parser.parse_args(argv)
    asyncio.run(serve(arguments.dir, arguments.port, arguments.host))


if __name__ == "__main__":
    main()
