"""Two-way channels: contact links, one-time link codes, posted chat messages, inbound dedup.

Revision ID: 0004_chat
Revises: 0003_notify
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_chat"
down_revision = "0003_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables of ``alerts/notify/chat_tables.py``."""
    op.create_table(
        "contact_links",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("linked_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_contact_links_username", "contact_links", ["username"])
    op.create_table(
        "link_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("expires_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_link_codes_expires_ns", "link_codes", ["expires_ns"])
    op.create_table(
        "chat_posts",
        sa.Column("chat_id", sa.String(32), primary_key=True),
        sa.Column("message_id", sa.BigInteger, primary_key=True),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("incidents", sa.JSON, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_chat_posts_delivery_id", "chat_posts", ["delivery_id"])
    op.create_table(
        "chat_inbound",
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("handled_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_chat_inbound_handled_ns", "chat_inbound", ["handled_ns"])
    op.create_table(
        "chat_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    for name in ("chat_state", "chat_inbound", "chat_posts", "link_codes", "contact_links"):
        op.drop_table(name)
