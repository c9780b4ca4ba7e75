"""Notification policy per regency: a regency's own recipients, groups, routes and escalations,
edited by its admins, merged over the deployment's policy file.

The file stays the deployment's default; a regency with a policy of its own is notified by it
alone (its notices never reach the file's routes). Everything here is pure:
:func:`parse_regency_policy` validates one regency's document as the file is validated (and
then the merged whole), :func:`effective_policy` merges.

Names are the regency's own: ``bpbd`` in Jember's policy is ``jember.bpbd`` in force, so two
regencies never collide and a regency can only name its own groups. Channel URLs and webhook
keys may name secrets only as ``${SIAGA_REGENCY_<SLUG>_...}`` variables, so a regency's admin can
never send the deployment's secrets (an ``${SIAGA_API__SECRET_KEY}`` in a URL) somewhere.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts.notify.errors import PolicyError
from alerts.notify.policy import Group, Policy, Recipient
from alerts.pipeline.escalation import EscalationChain, EscalationStep
from alerts.pipeline.route import Route

log = logging.getLogger(__name__)
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def regency_slug(regency: str) -> str:
    """The regency's prefix for names: ``Kota Bogor`` -> ``kota-bogor``."""
    return re.sub(r"[^a-z0-9]+", "-", regency.lower()).strip("-") or "regency"


def secret_prefix(regency: str) -> str:
    """The prefix of the environment variables a regency's channels may name."""
    return "SIAGA_REGENCY_" + regency_slug(regency).upper().replace("-", "_") + "_"


class RegencyPolicy(BaseModel):
    """One regency's part of the notification policy (the document its admins edit)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recipients: list[Recipient] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    default_groups: list[str] = Field(default_factory=list)
    escalations: dict[str, EscalationChain] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> RegencyPolicy:
        # The file's own checks (names unique, every reference known), on this part alone.
        Policy(
            recipients=self.recipients,
            groups=self.groups,
            routes=self.routes,
            default_groups=self.default_groups,
            escalations=self.escalations,
        )
        for index, route in enumerate(self.routes):
            if "regency" in route.match or "regency" in route.match_re:
                raise ValueError(f"routes[{index}]: a regency's routes match its regency already")
        return self


@dataclass(frozen=True, slots=True)
class StoredRegencyPolicy:
    """A version of a regency's policy as stored.

    Attributes:
        regency: Whose.
        version: 1, 2, ... (each edit is a new version; the newest is in force).
        policy: The document.
        created_by: Who saved it.
        created_ns: When.
    """

    regency: str
    version: int
    policy: RegencyPolicy
    created_by: str
    created_ns: int


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or '(top)'}: "
        f"{error['msg'].removeprefix('Value error, ')}"
        for error in exc.errors()
    )


def parse_regency_policy(
    regency: str, document: Mapping[str, Any], default: Policy | None = None
) -> RegencyPolicy:
    """Validate one regency's policy document, and the policy in force it would make.

    Args:
        regency: Whose policy it is.
        document: The document (as parsed JSON or YAML).
        default: The deployment's policy (the file), to check the merged whole against.

    Raises:
        PolicyError: Naming the entry at fault and why.
    """
    try:
        policy = RegencyPolicy.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(f"policy of {regency}: {_problems(exc)}") from None
    allowed = secret_prefix(regency)
    for recipient in policy.recipients:
        for channel in recipient.channels:
            names = [*_VARIABLE.findall(channel.url)]
            if channel.secret_env is not None:
                names.append(channel.secret_env)
            for name in names:
                if not name.startswith(allowed):
                    raise PolicyError(
                        f"policy of {regency}: recipient {recipient.name}, channel "
                        f"{channel.name}: secrets of a regency are named {allowed}..., "
                        f"not {name!r}"
                    )
    try:
        effective_policy(default or Policy(), {regency: policy})
    except ValidationError as exc:
        raise PolicyError(f"policy of {regency}: {_problems(exc)}") from None
    return policy


def _name(slug: str, name: str) -> str:
    return f"{slug}.{name}"


def effective_policy(default: Policy, regencies: Mapping[str, RegencyPolicy]) -> Policy:
    """The policy in force: the file's, with each regency's part before its routes.

    Each regency's routes get a ``regency`` matcher for itself, and one last route for the
    regency sends what none of its routes took to its ``default_groups`` (or, when it has none,
    to the file's default groups): a regency's notices never fall through to the file's routes.

    Raises:
        ValidationError: The merged whole is not a valid policy (a name taken by the file).
    """
    if not regencies:
        return default
    recipients = list(default.recipients)
    groups = list(default.groups)
    escalations = dict(default.escalations)
    routes: list[Route] = []
    for regency in sorted(regencies):
        part = regencies[regency]
        slug = regency_slug(regency)
        recipients += [r.model_copy(update={"name": _name(slug, r.name)}) for r in part.recipients]
        groups += [
            g.model_copy(
                update={
                    "name": _name(slug, g.name),
                    "members": [_name(slug, m) for m in g.members],
                    "escalation": None if g.escalation is None else _name(slug, g.escalation),
                }
            )
            for g in part.groups
        ]
        for name, chain in part.escalations.items():
            escalations[_name(slug, name)] = chain.model_copy(
                update={
                    "steps": [
                        EscalationStep(group=_name(slug, s.group), after_min=s.after_min)
                        for s in chain.steps
                    ]
                }
            )
        mine = {"regency": [regency]}
        routes += [
            r.model_copy(
                update={
                    "match": {**r.match, **mine},
                    "groups": [_name(slug, g) for g in r.groups],
                }
            )
            for r in part.routes
        ]
        fallback = [_name(slug, g) for g in part.default_groups] or list(default.default_groups)
        if fallback:
            routes.append(Route(match=mine, groups=fallback))
    merged = default.model_dump(by_alias=True)
    merged.update(
        recipients=[r.model_dump() for r in recipients],
        groups=[g.model_dump() for g in groups],
        escalations={k: v.model_dump() for k, v in escalations.items()},
        routes=[r.model_dump(by_alias=True) for r in [*routes, *default.routes]],
    )
    return Policy.model_validate(merged)


class PolicyInForce:
    """The file's policy merged with the regencies' newest versions, merged again only when
    either changes (the dispatcher asks for it on every pass)."""

    def __init__(self) -> None:
        self._default: Policy | None = None
        self._versions: tuple[tuple[str, int], ...] = ()
        self._merged: Policy | None = None
        self.regencies: dict[str, StoredRegencyPolicy] = {}
        self.failures = 0

    def use(self, stored: Mapping[str, StoredRegencyPolicy]) -> None:
        """The regencies' newest versions (from the store)."""
        self.regencies = dict(stored)

    def __call__(self, default: Policy) -> Policy:
        """The policy in force under ``default`` (the file's)."""
        versions = tuple(sorted((r, s.version) for r, s in self.regencies.items()))
        if default is not self._default or versions != self._versions or self._merged is None:
            try:
                self._merged = effective_policy(
                    default, {r: s.policy for r, s in self.regencies.items()}
                )
            except ValidationError as exc:
                # A new file that collides with a stored regency policy: the file alone, loudly.
                self.failures += 1
                log.warning("regency policies not in force, the file alone is: %s", exc)
                self._merged = default
            self._default, self._versions = default, versions
        return self._merged
