"""The API's users, API keys, sessions and used acknowledgement links.

Revision ID: 0002_api_accounts
Revises: 0001_incidents
Create Date: 2026-12-02

Tables a development start may already have made (``Accounts.create_tables``) are left as
they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_api_accounts"
down_revision = "0001_incidents"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    """Create the four tables where missing."""
    if _missing("users"):
        op.create_table(
            "users",
            sa.Column("id", _Id, primary_key=True, autoincrement=True),
            sa.Column("username", sa.String(100), nullable=False),
            sa.Column("password_hash", sa.String(200), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("created_ns", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_users"),
            sa.UniqueConstraint("username", name="uq_users_username"),
        )
    if _missing("api_keys"):
        op.create_table(
            "api_keys",
            sa.Column("id", _Id, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("key_hash", sa.String(64), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("created_by", sa.String(100), nullable=False),
            sa.Column("created_ns", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
            sa.UniqueConstraint("name", name="uq_api_keys_name"),
            sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        )
    if _missing("sessions"):
        op.create_table(
            "sessions",
            sa.Column("token_hash", sa.String(64), nullable=False),
            sa.Column("user_id", _Id, nullable=False),
            sa.Column("csrf_token", sa.String(64), nullable=False),
            sa.Column("created_ns", sa.BigInteger, nullable=False),
            sa.Column("expires_ns", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("token_hash", name="pk_sessions"),
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], name="fk_sessions_user_id_users", ondelete="CASCADE"
            ),
        )
        op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    if _missing("ack_link_uses"):
        op.create_table(
            "ack_link_uses",
            sa.Column("nonce", sa.String(64), nullable=False),
            sa.Column("incident_id", _Id, nullable=False),
            sa.Column("recipient", sa.String(200), nullable=False),
            sa.Column("used_ns", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("nonce", name="pk_ack_link_uses"),
        )


def downgrade() -> None:
    """Drop the four tables."""
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    for name in ("ack_link_uses", "sessions", "api_keys", "users"):
        op.drop_table(name)
