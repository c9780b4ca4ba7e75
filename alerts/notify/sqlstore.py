"""The notification store on the incident database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, RowMapping, Table, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from alerts.incidents.database import create_sql_engine
from alerts.notify.cap import CapDocument, CapReference
from alerts.notify.errors import NotifyError
from alerts.notify.records import PENDING, SENDING, Delivery, Queued, notice_from_json, notice_json
from alerts.notify.regency_policy import RegencyPolicy, StoredRegencyPolicy
from alerts.notify.tables import (
    cap_documents,
    notify_deliveries,
    notify_escalations,
    notify_flushed,
    notify_queue,
    notify_regency_policies,
    notify_silences,
)
from alerts.pipeline.silence import Matcher, Silence

_T = TypeVar("_T")


class NotifyStoreError(NotifyError):
    """The notification database failed (nothing of the operation was stored)."""


def _delivery_row(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "message_id": delivery.message_id,
        "group_name": delivery.group,
        "recipient": delivery.recipient,
        "channel": delivery.channel,
        "language": delivery.language,
        "subject": delivery.subject,
        "body": delivery.body,
        "short": delivery.short,
        "payload": delivery.payload,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "created_ns": delivery.created_ns,
        "next_attempt_ns": delivery.next_attempt_ns,
        "deadline_ns": delivery.deadline_ns,
        "lease_until_ns": delivery.lease_until_ns,
        "delivered_ns": delivery.delivered_ns,
        "last_error": delivery.last_error,
    }


def _delivery(row: RowMapping) -> Delivery:
    return Delivery(
        id=row["id"],
        message_id=row["message_id"],
        group=row["group_name"],
        recipient=row["recipient"],
        channel=row["channel"],
        language=row["language"],
        subject=row["subject"],
        body=row["body"],
        short=row["short"],
        payload=dict(row["payload"] or {}),
        status=row["status"],
        attempts=int(row["attempts"]),
        created_ns=int(row["created_ns"]),
        next_attempt_ns=int(row["next_attempt_ns"]),
        deadline_ns=int(row["deadline_ns"]),
        lease_until_ns=row["lease_until_ns"],
        delivered_ns=row["delivered_ns"],
        last_error=row["last_error"],
    )


def _document(row: RowMapping) -> CapDocument:
    return CapDocument(
        identifier=row["identifier"],
        incident_id=int(row["incident_id"]),
        msg_type=row["msg_type"],
        sent=row["sent"],
        sent_ns=int(row["sent_ns"]),
        station=row["station"],
        headline=row["headline"],
        xml=row["xml"],
    )


def _silence(row: RowMapping) -> Silence:
    return Silence(
        id=int(row["id"]),
        matchers=[Matcher.model_validate(m) for m in row["matchers"]],
        starts_ns=int(row["starts_ns"]),
        ends_ns=int(row["ends_ns"]),
        created_by=row["created_by"],
        comment=row["comment"],
        regencies=None if row["regencies"] is None else frozenset(row["regencies"]),
    )


class SqlNotifyStore:
    """Implements :class:`alerts.notify.store.NotifyStore` with SQLAlchemy.

    Args:
        url: The incident database's URL; the schema comes from its Alembic migrations.
        migrate: Run them at :meth:`prepare`.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self._migrate = migrate
        self.engine = create_sql_engine(url)
        self._dialect = self.engine.dialect.name

    async def prepare(self) -> None:
        """Create or upgrade the schema."""
        if self._migrate:
            from alerts.incidents.migrations import upgrade  # noqa: PLC0415 - alembic is heavy

            await self._run(lambda: upgrade(self.url))

    async def __aenter__(self) -> SqlNotifyStore:
        await self.prepare()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release connections."""
        await asyncio.to_thread(self.engine.dispose)

    def _insert_ignore(
        self, connection: Connection, table: Table, rows: Sequence[dict[str, Any]]
    ) -> int:
        if not rows:
            return 0
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        # RETURNING tells what was inserted: psycopg reports no rowcount for DO NOTHING.
        key = next(iter(table.primary_key.columns))
        statement = dialect.insert(table).on_conflict_do_nothing().returning(key)
        inserted = 0
        for row in rows:
            inserted += len(connection.execute(statement, row).all())
        return inserted

    async def queue(
        self, items: Sequence[Queued], escalations: Sequence[tuple[int, int, int]] = ()
    ) -> list[Queued]:
        """See :meth:`NotifyStore.queue`."""

        def run() -> list[Queued]:
            added = []
            with self.engine.begin() as connection:
                for item in items:
                    flushed = connection.execute(
                        select(notify_flushed.c.notice_id).where(
                            notify_flushed.c.group_name == item.group,
                            notify_flushed.c.notice_id == item.notice.id,
                        )
                    ).first()
                    if flushed is not None:
                        continue
                    row = {
                        "group_name": item.group,
                        "notice_id": item.notice.id,
                        "notice": notice_json(item.notice),
                        "queued_ns": item.queued_ns,
                    }
                    if self._insert_ignore(connection, notify_queue, [row]):
                        added.append(item)
                self._insert_ignore(
                    connection,
                    notify_escalations,
                    [{"incident_id": i, "step": s, "seq": q} for i, s, q in escalations],
                )
            return added

        return await self._run(run)

    async def queued(self) -> list[Queued]:
        """See :meth:`NotifyStore.queued`."""

        def run() -> list[Queued]:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    select(notify_queue).order_by(notify_queue.c.queued_ns)
                ).mappings()
                return [
                    Queued(r["group_name"], notice_from_json(r["notice"]), int(r["queued_ns"]))
                    for r in rows
                ]

        return await self._run(run)

    async def flush(
        self,
        flushed: Sequence[tuple[str, str]],
        deliveries: Sequence[Delivery],
        documents: Sequence[CapDocument] = (),
    ) -> None:
        """See :meth:`NotifyStore.flush`."""

        def run() -> None:
            now = max((d.created_ns for d in deliveries), default=0)
            with self.engine.begin() as connection:
                for group, notice_id in flushed:
                    connection.execute(
                        delete(notify_queue).where(
                            notify_queue.c.group_name == group,
                            notify_queue.c.notice_id == notice_id,
                        )
                    )
                self._insert_ignore(
                    connection,
                    notify_flushed,
                    [{"group_name": g, "notice_id": n, "flushed_ns": now} for g, n in flushed],
                )
                self._insert_ignore(
                    connection, notify_deliveries, [_delivery_row(d) for d in deliveries]
                )
                self._insert_ignore(
                    connection,
                    cap_documents,
                    [
                        {
                            "identifier": d.identifier,
                            "incident_id": d.incident_id,
                            "msg_type": d.msg_type,
                            "sent": d.sent,
                            "sent_ns": d.sent_ns,
                            "station": d.station,
                            "headline": d.headline,
                            "xml": d.xml,
                        }
                        for d in documents
                    ],
                )

        await self._run(run)

    async def escalations_emitted(self, incident_id: int) -> set[tuple[int, int]]:
        """See :meth:`NotifyStore.escalations_emitted`."""

        def run() -> set[tuple[int, int]]:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    select(notify_escalations.c.step, notify_escalations.c.seq).where(
                        notify_escalations.c.incident_id == incident_id
                    )
                )
                return {(int(step), int(seq)) for step, seq in rows}

        return await self._run(run)

    async def claim(self, now_ns: int, limit: int, lease_ns: int) -> list[Delivery]:
        """See :meth:`NotifyStore.claim`."""
        table = notify_deliveries

        def run() -> list[Delivery]:
            due = or_(
                and_(table.c.status == PENDING, table.c.next_attempt_ns <= now_ns),
                and_(table.c.status == SENDING, table.c.lease_until_ns <= now_ns),
            )
            with self.engine.begin() as connection:
                query = (
                    select(table)
                    .where(due)
                    .order_by(table.c.next_attempt_ns, table.c.created_ns, table.c.id)
                    .limit(limit)
                )
                if self._dialect == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                rows = [_delivery(r) for r in connection.execute(query).mappings()]
                if not rows:
                    return []
                lease = now_ns + lease_ns
                connection.execute(
                    update(table)
                    .where(table.c.id.in_([r.id for r in rows]))
                    .values(status=SENDING, lease_until_ns=lease)
                )
                return [dataclasses.replace(r, status=SENDING, lease_until_ns=lease) for r in rows]

        return await self._run(run)

    async def record(self, delivery: Delivery) -> None:
        """See :meth:`NotifyStore.record`."""
        row = _delivery_row(delivery)

        def run() -> None:
            with self.engine.begin() as connection:
                connection.execute(
                    update(notify_deliveries)
                    .where(notify_deliveries.c.id == delivery.id)
                    .values({k: v for k, v in row.items() if k != "id"})
                )

        await self._run(run)

    async def deliveries(
        self, message_id: str | None = None, *, since_ns: int | None = None
    ) -> list[Delivery]:
        """See :meth:`NotifyStore.deliveries`."""

        def run() -> list[Delivery]:
            query = select(notify_deliveries).order_by(
                notify_deliveries.c.created_ns, notify_deliveries.c.id
            )
            if message_id is not None:
                query = query.where(notify_deliveries.c.message_id == message_id)
            if since_ns is not None:
                query = query.where(notify_deliveries.c.created_ns >= since_ns)
            with self.engine.connect() as connection:
                return [_delivery(r) for r in connection.execute(query).mappings()]

        return await self._run(run)

    async def add_silence(self, silence: Silence) -> Silence:
        """See :meth:`NotifyStore.add_silence`."""

        def run() -> Silence:
            with self.engine.begin() as connection:
                result = connection.execute(
                    notify_silences.insert().values(
                        matchers=[m.model_dump() for m in silence.matchers],
                        starts_ns=silence.starts_ns,
                        ends_ns=silence.ends_ns,
                        created_by=silence.created_by,
                        comment=silence.comment,
                        regencies=(
                            None if silence.regencies is None else sorted(silence.regencies)
                        ),
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                return silence.model_copy(update={"id": int(key[0])})

        return await self._run(run)

    async def expire_silence(self, silence_id: int, at_ns: int) -> bool:
        """See :meth:`NotifyStore.expire_silence`."""

        def run() -> bool:
            with self.engine.begin() as connection:
                row = (
                    connection.execute(
                        select(notify_silences).where(notify_silences.c.id == silence_id)
                    )
                    .mappings()
                    .first()
                )
                if row is None:
                    return False
                end = max(int(row["starts_ns"]) + 1, min(int(row["ends_ns"]), at_ns))
                connection.execute(
                    update(notify_silences)
                    .where(notify_silences.c.id == silence_id)
                    .values(ends_ns=end)
                )
                return True

        return await self._run(run)

    async def silences(self, now_ns: int | None = None) -> list[Silence]:
        """See :meth:`NotifyStore.silences`."""

        def run() -> list[Silence]:
            query = select(notify_silences).order_by(notify_silences.c.id)
            if now_ns is not None:
                query = query.where(notify_silences.c.ends_ns > now_ns)
            with self.engine.connect() as connection:
                return [_silence(r) for r in connection.execute(query).mappings()]

        return await self._run(run)

    async def save_regency_policy(
        self, regency: str, policy: RegencyPolicy, created_by: str, created_ns: int
    ) -> StoredRegencyPolicy:
        """See :meth:`NotifyStore.save_regency_policy`."""

        def run() -> StoredRegencyPolicy:
            table = notify_regency_policies
            with self.engine.begin() as connection:
                newest = connection.execute(
                    select(func.max(table.c.version)).where(table.c.regency == regency)
                ).scalar_one()
                version = int(newest or 0) + 1
                connection.execute(
                    table.insert().values(
                        regency=regency,
                        version=version,
                        document=policy.model_dump(mode="json", by_alias=True),
                        created_by=created_by,
                        created_ns=created_ns,
                    )
                )
            return StoredRegencyPolicy(regency, version, policy, created_by, created_ns)

        return await self._run(run)

    async def regency_policies(
        self, regency: str | None = None, *, history: bool = False
    ) -> list[StoredRegencyPolicy]:
        """See :meth:`NotifyStore.regency_policies`."""

        def run() -> list[StoredRegencyPolicy]:
            table = notify_regency_policies
            query = select(table).order_by(table.c.regency, table.c.version.desc())
            if regency is not None:
                query = query.where(table.c.regency == regency)
            if not history:
                newest = (
                    select(table.c.regency, func.max(table.c.version).label("version"))
                    .group_by(table.c.regency)
                    .subquery()
                )
                query = query.join(
                    newest,
                    (newest.c.regency == table.c.regency) & (newest.c.version == table.c.version),
                )
            with self.engine.connect() as connection:
                return [
                    StoredRegencyPolicy(
                        row["regency"],
                        int(row["version"]),
                        RegencyPolicy.model_validate(row["document"]),
                        row["created_by"],
                        int(row["created_ns"]),
                    )
                    for row in connection.execute(query).mappings()
                ]

        return await self._run(run)

    async def cap_references(self, incident_id: int) -> list[CapReference]:
        """See :meth:`NotifyStore.cap_references`."""

        def run() -> list[CapReference]:
            query = (
                select(cap_documents.c.identifier, cap_documents.c.sent)
                .where(cap_documents.c.incident_id == incident_id)
                .order_by(cap_documents.c.sent_ns, cap_documents.c.identifier)
            )
            with self.engine.connect() as connection:
                return [CapReference(i, s) for i, s in connection.execute(query)]

        return await self._run(run)

    async def cap_feed_entries(self, since_ns: int | None, limit: int) -> list[CapDocument]:
        """See :meth:`NotifyStore.cap_feed_entries`."""

        def run() -> list[CapDocument]:
            query = (
                select(cap_documents)
                .order_by(cap_documents.c.sent_ns.desc(), cap_documents.c.identifier.desc())
                .limit(limit)
            )
            if since_ns is not None:
                query = query.where(cap_documents.c.sent_ns >= since_ns)
            with self.engine.connect() as connection:
                return [_document(r) for r in connection.execute(query).mappings()]

        return await self._run(run)

    async def _run(self, function: Callable[[], _T]) -> _T:
        try:
            return await asyncio.to_thread(function)
        except SQLAlchemyError as exc:
            raise NotifyStoreError(f"notification database: {exc}") from exc
