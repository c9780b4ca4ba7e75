"""Notifications: queue, dedup memory, deliveries, escalations, silences, CAP documents.

Revision ID: 0003_notify
Revises: 0002_api_accounts
Create Date: 2026-12-02

Until the branches merged this was ``0002_notify``, a second head beside ``0002_api_accounts``.
Databases that recorded it are adopted by :func:`alerts.incidents.migrations.adopt_old_heads`
before any migration runs; one that recorded only ``0002_notify`` comes back through here with
its notification tables in place, so they are then left as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_notify"
down_revision = "0002_api_accounts"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the notification tables (kept when the old ``0002_notify`` made them)."""
    if sa.inspect(op.get_bind()).has_table("notify_queue"):
        return
    op.create_table(
        "notify_queue",
        sa.Column("group_name", sa.String(64), primary_key=True),
        sa.Column("notice_id", sa.String(64), primary_key=True),
        sa.Column("notice", sa.JSON, nullable=False),
        sa.Column("queued_ns", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notify_flushed",
        sa.Column("group_name", sa.String(64), primary_key=True),
        sa.Column("notice_id", sa.String(64), primary_key=True),
        sa.Column("flushed_ns", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("short", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("next_attempt_ns", sa.BigInteger, nullable=False),
        sa.Column("deadline_ns", sa.BigInteger, nullable=False),
        sa.Column("lease_until_ns", sa.BigInteger, nullable=True),
        sa.Column("delivered_ns", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_notify_deliveries_message_id", "notify_deliveries", ["message_id"])
    op.create_index(
        "ix_notify_deliveries_status_next", "notify_deliveries", ["status", "next_attempt_ns"]
    )
    op.create_table(
        "notify_escalations",
        sa.Column("incident_id", _Id, primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
    )
    op.create_table(
        "notify_silences",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("matchers", sa.JSON, nullable=False),
        sa.Column("starts_ns", sa.BigInteger, nullable=False),
        sa.Column("ends_ns", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
    )
    op.create_index("ix_notify_silences_ends_ns", "notify_silences", ["ends_ns"])
    op.create_table(
        "cap_documents",
        sa.Column("identifier", sa.String(64), primary_key=True),
        sa.Column("incident_id", _Id, nullable=False),
        sa.Column("msg_type", sa.String(8), nullable=False),
        sa.Column("sent", sa.String(32), nullable=False),
        sa.Column("sent_ns", sa.BigInteger, nullable=False),
        sa.Column("station", sa.String(200), nullable=False),
        sa.Column("headline", sa.Text, nullable=False),
        sa.Column("xml", sa.Text, nullable=False),
    )
    op.create_index("ix_cap_documents_incident_id", "cap_documents", ["incident_id"])
    op.create_index("ix_cap_documents_sent_ns", "cap_documents", ["sent_ns"])


def downgrade() -> None:
    """Drop the notification tables."""
    for table in (
        "cap_documents",
        "notify_silences",
        "notify_escalations",
        "notify_deliveries",
        "notify_flushed",
        "notify_queue",
    ):
        op.drop_table(table)
