"""Incidents, their transitions, the outbox and the engine's state.

Revision ID: 0001_incidents
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_incidents"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the four tables."""
    op.create_table(
        "incidents",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("regency", sa.String(200), nullable=False),
        sa.Column("river", sa.String(200), nullable=False),
        sa.Column("opened_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.Column("resolved_ns", sa.BigInteger, nullable=True),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        sa.Column("acknowledged_ns", sa.BigInteger, nullable=True),
        sa.Column("ack_comment", sa.Text, nullable=True),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("last_event", sa.JSON, nullable=True),
        sa.Column("open_key", sa.String(401), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.UniqueConstraint("open_key", name="uq_incidents_open_key"),
    )
    op.create_index("ix_incidents_subject_rule", "incidents", ["subject", "rule"])
    op.create_index("ix_incidents_state", "incidents", ["state"])
    op.create_index("ix_incidents_updated_ns", "incidents", ["updated_ns"])
    op.create_table(
        "incident_transitions",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("incident_id", _Id, nullable=False),
        sa.Column("transition_key", sa.String(64), nullable=False),
        sa.Column("previous_state", sa.String(16), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("event", sa.JSON, nullable=False),
        sa.Column("at_ns", sa.BigInteger, nullable=False),
        sa.Column("reading_station", sa.String(200), nullable=True),
        sa.Column("reading_ts_ns", sa.BigInteger, nullable=True),
        sa.Column("reading_value", sa.JSON, nullable=True),
        sa.Column("committed_ns", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incident_transitions"),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_incident_transitions_incident_id_incidents",
        ),
        sa.UniqueConstraint("transition_key", name="uq_incident_transitions_transition_key"),
    )
    op.create_index("ix_incident_transitions_incident_id", "incident_transitions", ["incident_id"])
    op.create_table(
        "outbox",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("transition_id", _Id, nullable=False),
        sa.Column("incident_id", _Id, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("routed_ns", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["transition_id"],
            ["incident_transitions.id"],
            name="fk_outbox_transition_id_incident_transitions",
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_outbox_incident_id_incidents"
        ),
        sa.UniqueConstraint("transition_id", name="uq_outbox_transition_id"),
    )
    op.create_index("ix_outbox_state_id", "outbox", ["state", "id"])
    op.create_table(
        "engine_state",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_engine_state"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("engine_state")
    op.drop_table("outbox")
    op.drop_table("incident_transitions")
    op.drop_table("incidents")
