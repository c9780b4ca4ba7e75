"""Apprise: Telegram, WhatsApp gateways, e-mail (``mailto://``), SMS gateways, json://, form://…

The URL may name secrets as ``${TELEGRAM_TOKEN}``; they are expanded only at send time, so
neither the policy file, nor a log line, nor an exception message ever carries them.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping

import apprise
from apprise import NotifyFormat

with warnings.catch_warnings():
    # Apprise's e-mail plugin imports the standard library's deprecated imghdr (Python 3.11,
    # 3.12); loading it once here keeps that warning out of logs and strict test runs.
    warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
    import apprise.plugins.email

from alerts.notify.channels import DELIVERED, Outgoing, SendResult, expand_secrets, redact
from alerts.notify.errors import PermanentDeliveryError

log = logging.getLogger(__name__)


class AppriseChannel:
    """One Apprise URL.

    Args:
        name: The channel's name in the policy (``telegram``, ``email``…).
        url: The Apprise URL, possibly with ``${VAR}`` secrets.
        pages: Whether it reaches a phone (late events skip such channels by default).
        short: Send the one-SMS form instead of the long one (SMS gateways).
        environ: Where secrets come from (the process environment by default).
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        pages: bool = True,
        short: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.pages = pages
        self._url = url
        self._short = short
        self._environ = environ

    def __repr__(self) -> str:
        return f"AppriseChannel({self.name!r}, {redact(self._url)!r})"

    async def send(self, message: Outgoing) -> SendResult:
        """Deliver through Apprise; Apprise says only yes or no, so a no is retryable."""
        url = expand_secrets(self._url, os.environ if self._environ is None else self._environ)
        notifier = apprise.Apprise()
        if not notifier.add(url):
            raise PermanentDeliveryError(
                f"channel {self.name}: Apprise does not accept {redact(self._url)}"
            )
        body = message.short if self._short else message.body
        title = "" if self._short else message.subject
        # Siaga's bodies are plain text: said so, Apprise keeps their line breaks (unsaid, its
        # e-mail plugin took them for HTML and ran a grouped e-mail's notices onto one line).
        ok = await notifier.async_notify(body=body, title=title, body_format=NotifyFormat.TEXT)
        if ok:
            return DELIVERED
        return SendResult(
            delivered=False, retryable=True, error=f"{self.name}: Apprise could not deliver"
        )
