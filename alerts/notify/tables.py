"""The notification tables, on the incident database's shared ``metadata``.

- ``notify_queue``: notices waiting in a recipient group's bucket (group wait survives restarts).
- ``notify_flushed``: (group, notice) pairs already turned into messages: the dedup memory.
- ``notify_deliveries``: one row per message, recipient and channel, with its status.
- ``notify_escalations``: (incident, step, seq) already emitted.
- ``notify_silences``: silences made at run time (the API and the CLI).
- ``cap_documents``: every CAP 1.2 document issued (the Atom feed's entries).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from alerts.incidents.tables import metadata

_Id = BigInteger().with_variant(Integer(), "sqlite")

notify_queue = Table(
    "notify_queue",
    metadata,
    Column("group_name", String(64), primary_key=True),
    Column("notice_id", String(64), primary_key=True),
    Column("notice", JSON, nullable=False),
    Column("queued_ns", BigInteger, nullable=False),
)

notify_flushed = Table(
    "notify_flushed",
    metadata,
    Column("group_name", String(64), primary_key=True),
    Column("notice_id", String(64), primary_key=True),
    Column("flushed_ns", BigInteger, nullable=False),
)

notify_deliveries = Table(
    "notify_deliveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("message_id", String(32), nullable=False, index=True),
    Column("group_name", String(64), nullable=False),
    Column("recipient", String(64), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("short", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("next_attempt_ns", BigInteger, nullable=False),
    Column("deadline_ns", BigInteger, nullable=False),
    Column("lease_until_ns", BigInteger, nullable=True),
    Column("delivered_ns", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_notify_deliveries_status_next", "status", "next_attempt_ns"),
)

notify_escalations = Table(
    "notify_escalations",
    metadata,
    Column("incident_id", _Id, primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True),
)

notify_silences = Table(
    "notify_silences",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("matchers", JSON, nullable=False),
    Column("starts_ns", BigInteger, nullable=False),
    Column("ends_ns", BigInteger, nullable=False, index=True),
    Column("created_by", String(200), nullable=False),
    Column("comment", Text, nullable=False),
    # The regencies it may mute (None: the whole deployment's alerts).
    Column("regencies", JSON, nullable=True),
)

notify_regency_policies = Table(
    "notify_regency_policies",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("regency", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", JSON, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    UniqueConstraint("regency", "version", name="uq_notify_regency_policies_version"),
)

cap_documents = Table(
    "cap_documents",
    metadata,
    Column("identifier", String(64), primary_key=True),
    Column("incident_id", _Id, nullable=False, index=True),
    Column("msg_type", String(8), nullable=False),
    Column("sent", String(32), nullable=False),
    Column("sent_ns", BigInteger, nullable=False, index=True),
    Column("station", String(200), nullable=False),
    Column("headline", Text, nullable=False),
    Column("xml", Text, nullable=False),
)
