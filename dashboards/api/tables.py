"""The API's tables, on the incident database's shared metadata.

- ``users``: people who sign in; Argon2 password hashes, one role each.
- ``api_keys``: machines; only the SHA-256 of each key is kept (keys are random, 256 bits).
- ``sessions``: browser sessions; only the SHA-256 of the cookie value, plus its CSRF token.
- ``ack_link_uses``: every acknowledgement link honoured (by its signature), so each works once.
- ``audit_log``: who did what to which incident, user, key, silence or policy, when and from
  where; rows are only ever added (one per regency concerned; none: deployment-wide).

Users and keys carry a scope: ``regencies`` (a JSON list) or ``province``; neither is the
whole deployment (devices/scopes.py).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String, Table

from alerts.incidents.tables import metadata

_Id = BigInteger().with_variant(Integer(), "sqlite")

users = Table(
    "users",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("regencies", JSON, nullable=True),
    Column("province", String(100), nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("regencies", JSON, nullable=True),
    Column("province", String(100), nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", _Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("expires_ns", BigInteger, nullable=False),
)

ack_link_uses = Table(
    "ack_link_uses",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("incident_id", _Id, nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("used_ns", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("at_ns", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_kind", String(32), nullable=False),
    Column("target", String(200), nullable=False),
    Column("regency", String(100), nullable=True),
    Column("province", String(100), nullable=True),
    Column("client_ip", String(64), nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_log_at_ns", "at_ns"),
    Index("ix_audit_log_regency", "regency"),
)

API_TABLES = (users, api_keys, sessions, ack_link_uses, audit_log)
