"""Tenancy: scopes on users and API keys, scoped silences, the audit log, regency policies.

Revision ID: 0005_tenancy
Revises: 0004_chat
Create Date: 2026-12-07

Every existing user, key and silence gets no regencies and no province, which is the whole
deployment: nobody loses access or a silence on upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_tenancy"
down_revision = "0004_chat"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_SCOPED = ("users", "api_keys")


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    """Add the scope columns (where a development start has not) and the audit log."""
    for table in _SCOPED:
        if "regencies" not in _columns(table):
            with op.batch_alter_table(table) as batch:
                batch.add_column(sa.Column("regencies", sa.JSON, nullable=True))
                batch.add_column(sa.Column("province", sa.String(100), nullable=True))
    if "regencies" not in _columns("notify_silences"):
        with op.batch_alter_table("notify_silences") as batch:
            batch.add_column(sa.Column("regencies", sa.JSON, nullable=True))
    if not sa.inspect(op.get_bind()).has_table("audit_log"):
        op.create_table(
            "audit_log",
            sa.Column("id", _Id, primary_key=True, autoincrement=True),
            sa.Column("at_ns", sa.BigInteger, nullable=False),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("target_kind", sa.String(32), nullable=False),
            sa.Column("target", sa.String(200), nullable=False),
            sa.Column("regency", sa.String(100), nullable=True),
            sa.Column("province", sa.String(100), nullable=True),
            sa.Column("client_ip", sa.String(64), nullable=False),
            sa.Column("detail", sa.JSON, nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        )
        op.create_index("ix_audit_log_at_ns", "audit_log", ["at_ns"])
        op.create_index("ix_audit_log_regency", "audit_log", ["regency"])
        _append_only()
    if not sa.inspect(op.get_bind()).has_table("notify_regency_policies"):
        op.create_table(
            "notify_regency_policies",
            sa.Column("id", _Id, primary_key=True, autoincrement=True),
            sa.Column("regency", sa.String(100), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("document", sa.JSON, nullable=False),
            sa.Column("created_by", sa.String(200), nullable=False),
            sa.Column("created_ns", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("id", name="pk_notify_regency_policies"),
            sa.UniqueConstraint("regency", "version", name="uq_notify_regency_policies_version"),
        )


_REFUSAL = "the audit log is append-only"


def _append_only() -> None:
    """The database itself refuses to change or delete an audit row (Siaga never does; this
    keeps anything else that writes with Siaga's credentials from doing it quietly)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION siaga_audit_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{_REFUSAL}'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION siaga_audit_append_only()"
        )
        return
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
        )


def downgrade() -> None:
    """Drop the regency policies, the audit log and the scope columns (everyone becomes
    deployment-wide)."""
    op.drop_table("notify_regency_policies")
    op.drop_table("audit_log")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS siaga_audit_append_only()")
    with op.batch_alter_table("notify_silences") as batch:
        batch.drop_column("regencies")
    for table in _SCOPED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("province")
            batch.drop_column("regencies")
