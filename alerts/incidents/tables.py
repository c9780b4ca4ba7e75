"""The incident database's tables, on one shared :data:`metadata`.

Other packages add their own tables (notification deliveries, users, ...) to this same
``metadata`` and their own Alembic revisions next to ours in ``migrations/versions``.

- ``incidents``: one row per incident; at most one *open* (pending or firing) incident per
  (subject, rule), enforced by the unique ``open_key`` (NULL once resolved).
- ``incident_transitions``: every state change with the event and the reading that caused it;
  ``transition_key`` (event id + new state) is unique, so replaying a committed step is a no-op.
- ``outbox``: one row per transition, inserted in the same transaction; state ``new`` until the
  notification pipeline marks it ``routed``.
- ``engine_state``: the rule engine's serialized state per key (a station), written with the
  transitions it led to.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

# Named constraints, so migrations can refer to them on SQLite and PostgreSQL alike.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
_Id = BigInteger().with_variant(Integer(), "sqlite")

incidents = Table(
    "incidents",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("subject", String(200), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("regency", String(200), nullable=False, default=""),
    Column("river", String(200), nullable=False, default=""),
    Column("opened_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("resolved_ns", BigInteger, nullable=True),
    Column("acknowledged_by", String(200), nullable=True),
    Column("acknowledged_ns", BigInteger, nullable=True),
    Column("ack_comment", Text, nullable=True),
    Column("assignee", String(200), nullable=True),
    Column("labels", JSON, nullable=False, default=dict),
    Column("last_event", JSON, nullable=True),
    Column("open_key", String(401), nullable=True, unique=True),
    Index("ix_incidents_subject_rule", "subject", "rule"),
    Index("ix_incidents_state", "state"),
    Index("ix_incidents_updated_ns", "updated_ns"),
)

incident_transitions = Table(
    "incident_transitions",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("incident_id", _Id, ForeignKey("incidents.id"), nullable=False, index=True),
    Column("transition_key", String(64), nullable=False, unique=True),
    Column("previous_state", String(16), nullable=True),
    Column("state", String(16), nullable=False),
    Column("event_id", String(32), nullable=False),
    Column("event", JSON, nullable=False),
    Column("at_ns", BigInteger, nullable=False),
    Column("reading_station", String(200), nullable=True),
    Column("reading_ts_ns", BigInteger, nullable=True),
    Column("reading_value", JSON, nullable=True),
    Column("committed_ns", BigInteger, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column(
        "transition_id",
        _Id,
        ForeignKey("incident_transitions.id"),
        nullable=False,
        unique=True,
    ),
    Column("incident_id", _Id, ForeignKey("incidents.id"), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("state", String(16), nullable=False, default="new"),
    Column("routed_ns", BigInteger, nullable=True),
    Index("ix_outbox_state_id", "state", "id"),
)

engine_state = Table(
    "engine_state",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("state", LargeBinary, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
)
