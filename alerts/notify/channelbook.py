"""The channel registry: the channels of the policy in force, built on first use.

:class:`ChannelBook` maps a (recipient, channel name) of the policy to a running
:class:`~alerts.notify.channels.Channel`: Apprise URLs and signed webhooks it builds itself;
the kinds that need a running part (``telegram``, ``sms``) come from factories the process
registers in :attr:`ChannelBook.kinds`. A changed spec (policy reload) rebuilds its channel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import httpx
from pydantic import SecretStr

from alerts.notify.apprise_channel import AppriseChannel
from alerts.notify.channels import Channel, Outgoing, SendResult
from alerts.notify.policy import ChannelSpec, Policy
from alerts.notify.webhook import WebhookChannel
from alerts.settings import NotifySettings

_NOTIFY = NotifySettings.model_fields  # the settings tree is the one source of every default


class ChannelBook:
    """The channels of the policy in force, built on first use and rebuilt on reload.

    Args:
        client: The HTTP client webhooks share.
        environ: Where ``${VAR}`` secrets and webhook keys come from (the process by default).
        timeout_s: Webhook timeout per attempt.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        environ: Mapping[str, str] | None = None,
        timeout_s: float = _NOTIFY["webhook_timeout_s"].default,
    ) -> None:
        self._client = client
        self._environ = environ
        self._timeout_s = timeout_s
        self._cache: dict[tuple[str, str], tuple[ChannelSpec, Channel]] = {}
        self.overrides: dict[tuple[str, str], Channel] = {}
        self.kinds: dict[str, Callable[[ChannelSpec], Channel]] = {}
        """Factories of the channel types that need a running part (``telegram``, ``sms``)."""

    def get(self, policy: Policy, recipient: str, name: str) -> Channel | None:
        """The channel ``name`` of ``recipient`` under ``policy`` (None: no longer exists)."""
        if (recipient, name) in self.overrides:
            return self.overrides[(recipient, name)]
        person = policy.recipient(recipient)
        spec = next((c for c in person.channels if c.name == name), None) if person else None
        if spec is None:
            return None
        cached = self._cache.get((recipient, name))
        if cached is not None and cached[0] == spec:
            return cached[1]
        channel = self._build(spec)
        self._cache[(recipient, name)] = (spec, channel)
        return channel

    def _build(self, spec: ChannelSpec) -> Channel:
        if spec.type in {"telegram", "sms"}:
            factory = self.kinds.get(spec.type)
            if factory is None:
                return Unavailable(spec.name, f"{spec.type} is not set up in this process")
            return factory(spec)
        if spec.type == "webhook":
            env = os.environ if self._environ is None else self._environ
            key = env.get(spec.secret_env or "", "")
            return WebhookChannelLazy(
                spec, SecretStr(key), self._client, self._timeout_s, self._environ
            )
        return AppriseChannel(
            spec.name, spec.url, pages=spec.paging, short=spec.short, environ=self._environ
        )


class Unavailable:
    """A channel whose part is not running (no bot token, no modem): fails for good, saying why."""

    pages = True

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self._why = why

    async def send(self, message: Outgoing) -> SendResult:
        """Refuse."""
        return SendResult(False, False, f"{self.name}: {self._why}")


class WebhookChannelLazy:
    """A webhook channel that refuses to send without its key (permanent failure)."""

    pages = False

    def __init__(
        self,
        spec: ChannelSpec,
        secret: SecretStr,
        client: httpx.AsyncClient,
        timeout_s: float,
        environ: Mapping[str, str] | None,
    ) -> None:
        self.name = spec.name
        self._secret_env = spec.secret_env
        self._missing = not secret.get_secret_value()
        self._channel = WebhookChannel(
            spec.name, spec.url, secret, client, timeout_s=timeout_s, environ=environ
        )

    async def send(self, message: Outgoing) -> SendResult:
        """Send, unless the key is missing."""
        if self._missing:
            return SendResult(False, False, f"{self.name}: {self._secret_env} is not set")
        return await self._channel.send(message)
