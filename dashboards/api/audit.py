"""The audit log: who did what to which incident, user, API key, silence or policy, when and
from where.

Append-only: :class:`AuditLog` can add rows and read them, and nothing else; no route edits or
deletes one. Each change is stored once per regency it concerns (a user of two regencies: two
rows), so that each regency's admins read exactly their own with one indexed query; a change
of a province's scope is one row with the province, one of the whole deployment a row with
neither.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, Engine, insert, or_, select

from dashboards.api.tables import audit_log
from devices.scopes import Scope

TARGET_KINDS = ("incident", "silence", "user", "api_key", "policy")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change.

    Attributes:
        at_ns: When (the API's clock).
        actor: Who: a username, or ``key:<name>`` for an API key.
        action: What, e.g. ``incident.acknowledge``, ``user.add``, ``silence.expire``.
        target_kind: One of :data:`TARGET_KINDS`.
        target: Which: the incident or silence id, the username, the key's name, the regency.
        client_ip: From where (the connecting address).
        regency: The regency it concerns (None: a province's or the deployment's).
        province: The province it concerns, when it is a province's.
        detail: What else is worth knowing (a comment, the role given), never a secret.
        id: The row's id (0 before it is stored).
    """

    at_ns: int
    actor: str
    action: str
    target_kind: str
    target: str
    client_ip: str
    regency: str | None = None
    province: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: int = 0


@dataclass(frozen=True, slots=True)
class Change:
    """One change as a route reports it (see :class:`AuditEntry` for the fields).

    Attributes:
        concerns: A scope (a user's or key's), a set of regencies (an incident's one, a
            silence's), or None (the whole deployment's).
    """

    concerns: Scope | frozenset[str] | None
    actor: str
    action: str
    target_kind: str
    target: str
    client_ip: str
    detail: Mapping[str, Any] = field(default_factory=dict)


def entries(change: Change, at_ns: int) -> list[AuditEntry]:
    """The rows for one change at ``at_ns``, one per regency it concerns.

    Raises:
        ValueError: An unknown target kind.
    """
    if change.target_kind not in TARGET_KINDS:
        raise ValueError(f"unknown target kind {change.target_kind!r}")
    base = AuditEntry(
        at_ns,
        change.actor,
        change.action,
        change.target_kind,
        change.target,
        change.client_ip,
        detail=change.detail,
    )
    concerns = change.concerns
    if isinstance(concerns, Scope):
        if concerns.province is not None:
            return [_with(base, province=concerns.province)]
        concerns = concerns.regencies or None
    if not concerns:
        return [base]
    return [_with(base, regency=r) for r in sorted(concerns)]


def _with(entry: AuditEntry, **changes: Any) -> AuditEntry:
    return replace(entry, **changes)


class AuditLog:
    """The ``audit_log`` table: add and read, never change."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, rows: Sequence[AuditEntry]) -> None:
        """Append rows in one transaction."""
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(audit_log),
                [
                    {
                        "at_ns": r.at_ns,
                        "actor": r.actor,
                        "action": r.action,
                        "target_kind": r.target_kind,
                        "target": r.target,
                        "regency": r.regency,
                        "province": r.province,
                        "client_ip": r.client_ip,
                        "detail": dict(r.detail),
                    }
                    for r in rows
                ],
            )

    def read(
        self,
        *,
        regencies: frozenset[str] | None,
        province: str | None = None,
        target_kind: str | None = None,
        target: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first: rows of ``regencies`` (and of ``province`` when given); None: all.

        Args:
            regencies: The reader's regencies (None: the deployment's admin reads everything).
            province: The reader's province: its own province-wide rows too.
            target_kind: Only changes to this kind of thing.
            target: Only changes to this one.
            before_id: Rows older than this id (paging).
            limit: At most this many.
        """
        query = select(audit_log)
        if regencies is not None:
            scope: ColumnElement[bool] = audit_log.c.regency.in_(sorted(regencies))
            if province is not None:
                scope = or_(scope, audit_log.c.province == province)
            query = query.where(scope)
        if target_kind is not None:
            query = query.where(audit_log.c.target_kind == target_kind)
        if target is not None:
            query = query.where(audit_log.c.target == target)
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        query = query.order_by(audit_log.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditEntry(
                at_ns=r["at_ns"],
                actor=r["actor"],
                action=r["action"],
                target_kind=r["target_kind"],
                target=r["target"],
                client_ip=r["client_ip"],
                regency=r["regency"],
                province=r["province"],
                detail=r["detail"] or {},
                id=r["id"],
            )
            for r in rows
        ]
