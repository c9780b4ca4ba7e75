"""What every response and request passes through: security headers, a body size limit, and
access-log lines with their secrets blotted out.

Pure ASGI middleware (no ``BaseHTTPMiddleware``): the event stream passes through unbuffered.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.errors import InputError

# The pages load only what Siaga serves; Leaflet and uPlot position elements with inline styles,
# so styles may be inline, scripts never.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_CSP = b"content-security-policy"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DOCS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
BODY_TOO_LARGE = "body_too_large"


class TooLargeError(InputError):
    """A request body above the limit (raised inside :class:`Guard`'s receive)."""


class Guard:
    """Adds the security headers to every HTTP response and refuses oversized bodies with 413.

    A declared ``Content-Length`` above ``max_body_bytes`` is refused before the app runs; a
    chunked body is counted as it arrives and refused when it passes the limit. Each refusal
    counts ``refused["body_too_large"]``. The interactive API docs (``/docs``, ``/redoc``) load
    Swagger UI with an inline script: they keep their own pages without the policy.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, refused: Counter[str]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if _CSP not in present and scope["path"] not in _DOCS:
                    headers.append((_CSP, CONTENT_SECURITY_POLICY.encode()))
                message = {**message, "headers": headers}
            await send(message)

        if scope["method"] in _UNSAFE:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                self.refused[BODY_TOO_LARGE] += 1
                await _too_large(self.max_body_bytes, send_with_headers)
                return
            receive = self._counting(receive)
        try:
            await self.app(scope, receive, send_with_headers)
        except TooLargeError:
            self.refused[BODY_TOO_LARGE] += 1
            if not started:
                await _too_large(self.max_body_bytes, send_with_headers)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise TooLargeError
            return message

        return counted


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(limit: int, send: Send) -> None:
    body = f'{{"detail":"the request body is larger than {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- access logs ------------------------------------------------------------------------------

# Secrets that may travel in a URL: the feed key (?key=), an acknowledgement link's signature
# (?sig=).
_SECRET_QUERY = re.compile(r"(?i)([?&](?:key|sig|token|api_key|password)=)[^&\s\"]*")
REDACTED = "***"


def redact_url(text: str) -> str:
    """``text`` with the secrets a URL may carry replaced by ``***``."""
    return _SECRET_QUERY.sub(rf"\g<1>{REDACTED}", text)


class RedactUrls(logging.Filter):
    """Blots out URL secrets in log records (uvicorn's access log carries the full path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's arguments; never drops it."""
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        record.msg = redact_url(record.msg) if isinstance(record.msg, str) else record.msg
        return True


def _redact_arg(value: Any) -> Any:
    return redact_url(value) if isinstance(value, str) else value


def install_log_redaction() -> None:
    """Add :class:`RedactUrls` to uvicorn's access and error loggers (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrls) for f in logger.filters):
            logger.addFilter(RedactUrls())
