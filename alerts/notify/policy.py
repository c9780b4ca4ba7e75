"""The notification policy (``config/alerts.yaml``): who hears what, how, when, and who next.

Validated at start (a bad file stops the process with the entry at fault) and hot-reloaded
(a broken edit is logged and the last good policy stays in force). Secrets never appear here:
channel URLs name them as ``${VAR}`` and webhooks name the variable holding their key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.notify.errors import PolicyError
from alerts.pipeline.escalation import EscalationChain
from alerts.pipeline.group import Timings
from alerts.pipeline.inhibit import DEFAULT_INHIBIT_RULES, InhibitRule
from alerts.pipeline.route import Route
from alerts.pipeline.silence import Matcher, Silence
from ingest.filewatch import FileChanges, poll

log = logging.getLogger(__name__)

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class ChannelSpec(BaseModel):
    """One channel of a recipient.

    Attributes:
        name: Unique within the recipient (``telegram``, ``email``, ``sms``, ``hook``).
        type: ``apprise`` (any Apprise URL), ``webhook`` (signed JSON), ``telegram`` (the
            two-way bot: ``url`` names a chat of ``telegram.chats``) or ``sms`` (the local GSM
            modem: ``url`` is the phone number, ``+62…``).
        url: The Apprise URL, the webhook endpoint, the chat's name or the number; ``${VAR}``
            names a secret.
        pages: It reaches a phone (late events skip it unless ``page_late``). Defaults to true
            for Apprise, false for webhooks.
        short: Send the one-SMS form (SMS gateways).
        secret_env: Webhooks: the environment variable holding the HMAC key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME)
    type: Literal["apprise", "webhook", "telegram", "sms"] = "apprise"
    url: str = Field(min_length=3)
    pages: bool | None = None
    short: bool = False
    secret_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _webhook_has_key(self) -> ChannelSpec:
        if self.type == "webhook" and self.secret_env is None:
            raise ValueError(f"webhook {self.name}: secret_env names the HMAC key's variable")
        return self

    @property
    def paging(self) -> bool:
        """Whether this channel pages a phone."""
        return self.pages if self.pages is not None else self.type != "webhook"


class Fallback(BaseModel):
    """A channel used only when the others did not deliver in time (SMS when the internet is
    down): a message none of the recipient's other channels delivered within ``after_min``
    goes by ``channel`` too."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str = Field(pattern=_NAME)
    after_min: float = Field(default=5.0, gt=0)


class Recipient(BaseModel):
    """A person or a system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME)
    language: Literal["id", "en"] = "id"
    channels: list[ChannelSpec] = Field(min_length=1)
    fallback: Fallback | None = None

    @field_validator("channels")
    @classmethod
    def _unique(cls, channels: list[ChannelSpec]) -> list[ChannelSpec]:
        names = [c.name for c in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names repeat: {names}")
        return channels

    @model_validator(mode="after")
    def _fallback_is_a_channel(self) -> Recipient:
        if self.fallback is not None:
            names = [c.name for c in self.channels]
            if self.fallback.channel not in names:
                raise ValueError(f"fallback channel {self.fallback.channel!r} is not in {names}")
            if len(names) < 2:
                raise ValueError("a fallback needs another channel to fall back from")
        return self

    @property
    def primary(self) -> list[ChannelSpec]:
        """The channels every message goes to (all but the fallback)."""
        fallback = self.fallback.channel if self.fallback else None
        return [c for c in self.channels if c.name != fallback]


class Group(BaseModel):
    """Recipients notified together, with an optional escalation chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME)
    members: list[str] = Field(min_length=1)
    escalation: str | None = None


class SilenceSpec(BaseModel):
    """A silence written in the policy file (maintenance known in advance)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    matchers: list[Matcher] = Field(min_length=1)
    starts: datetime
    ends: datetime
    created_by: str
    comment: str

    @field_validator("starts", "ends")
    @classmethod
    def _aware(cls, moment: datetime) -> datetime:
        if moment.utcoffset() is None:
            raise ValueError("needs a UTC offset (e.g. 2026-12-02T08:00:00+07:00)")
        return moment

    def silence(self) -> Silence:
        """As a pipeline value."""
        return Silence(
            matchers=self.matchers,
            starts_ns=int(self.starts.timestamp() * 1e9),
            ends_ns=int(self.ends.timestamp() * 1e9),
            created_by=self.created_by,
            comment=self.comment,
        )


class Policy(BaseModel):
    """The whole notification policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipients: list[Recipient] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    default_groups: list[str] = Field(default_factory=list)
    group_by: list[str] = Field(default_factory=lambda: ["regency", "kind"])
    group_wait_s: float = Field(default=30.0, ge=0)
    group_interval_s: float = Field(default=300.0, gt=0)
    repeat_interval_s: float = Field(default=4 * 3600.0, gt=0)
    inhibit: list[InhibitRule] = Field(default_factory=lambda: list(DEFAULT_INHIBIT_RULES))
    escalations: dict[str, EscalationChain] = Field(default_factory=dict)
    silences: list[SilenceSpec] = Field(default_factory=list)
    page_late: bool = False
    time_zones: dict[str, Literal["WIB", "WITA", "WIT"]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> Policy:
        recipients = {r.name for r in self.recipients}
        if len(recipients) != len(self.recipients):
            raise ValueError("recipient names repeat")
        groups = {g.name for g in self.groups}
        if len(groups) != len(self.groups):
            raise ValueError("group names repeat")
        for group in self.groups:
            unknown = set(group.members) - recipients
            if unknown:
                raise ValueError(f"group {group.name}: unknown members {sorted(unknown)}")
            if group.escalation is not None and group.escalation not in self.escalations:
                raise ValueError(f"group {group.name}: unknown escalation {group.escalation!r}")
        for index, route in enumerate(self.routes):
            unknown = set(route.groups) - groups
            if unknown:
                raise ValueError(f"routes[{index}]: unknown groups {sorted(unknown)}")
        unknown = set(self.default_groups) - groups
        if unknown:
            raise ValueError(f"default_groups: unknown groups {sorted(unknown)}")
        for name, chain in self.escalations.items():
            unknown = {step.group for step in chain.steps} - groups
            if unknown:
                raise ValueError(f"escalations.{name}: unknown groups {sorted(unknown)}")
        return self

    @property
    def timings(self) -> Timings:
        """The grouping timings."""
        return Timings(self.group_wait_s, self.group_interval_s, self.repeat_interval_s)

    def group(self, name: str) -> Group | None:
        """A group by name."""
        return next((g for g in self.groups if g.name == name), None)

    def recipient(self, name: str) -> Recipient | None:
        """A recipient by name."""
        return next((r for r in self.recipients if r.name == name), None)

    def chain_for(self, groups: tuple[str, ...]) -> tuple[EscalationChain, tuple[str, ...]] | None:
        """The escalation chain of the first routed group that has one, and the routed groups
        that share it (step 0's reminders go to them, not to the chain's first group)."""
        for name in groups:
            group = self.group(name)
            if group is not None and group.escalation is not None:
                sharing = tuple(
                    g
                    for g in groups
                    if (found := self.group(g)) and found.escalation == group.escalation
                )
                return self.escalations[group.escalation], sharing
        return None


def parse_policy(text: str, source: str = "<alerts.yaml>") -> Policy:
    """Parse and validate a policy document.

    Raises:
        PolicyError: With the entry and the problem.
    """
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from None
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise PolicyError(f"{source}: {problems}") from None


def load_policy(path: Path) -> Policy:
    """Read and parse the policy file (an absent file is an empty policy)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Policy()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_policy(text, str(path))


class PolicyWatcher:
    """Holds the policy in force and reloads it when the file changes.

    A broken edit is logged and the last good policy stays in force.
    """

    def __init__(self, path: Path, on_change: Callable[[Policy], None] | None = None) -> None:
        self.path = path
        self.current = load_policy(path)
        self.reloads = 0
        self.failures = 0
        self._on_change = on_change
        self._changes = FileChanges([path])

    def check(self) -> bool:
        """Reload if the file changed; returns whether a new policy is in force."""
        if not self._changes.changed():
            return False
        try:
            policy = load_policy(self.path)
        except PolicyError as exc:
            self.failures += 1
            log.warning("notification policy not reloaded, keeping the last good one: %s", exc)
            return False
        self.current = policy
        self.reloads += 1
        log.info("notification policy reloaded: %d recipients", len(policy.recipients))
        if self._on_change is not None:
            self._on_change(policy)
        return True

    async def run(self, interval_s: float) -> None:
        """Look every ``interval_s`` until cancelled."""
        await poll(self.check, interval_s)
