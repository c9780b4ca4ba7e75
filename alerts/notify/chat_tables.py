"""The tables of two-way channels (Telegram, SMS), on the incident database's shared ``metadata``.

- ``contact_links``: a Telegram account or a phone number → the Siaga user it acts as.
- ``link_codes``: one-time codes that link a Telegram account (only their SHA-256, expiring).
- ``chat_posts``: every Telegram message the bot posted, with the incidents it carries (its text
  is edited when one of them is acknowledged).
- ``chat_inbound``: the inbound updates already handled (Telegram ``update_id``, a digest of an
  incoming SMS): a replay is recognised and does nothing twice.
- ``chat_state``: small named values (the ``getUpdates`` offset).

The users themselves are the API's ``users`` table (``dashboards/api/tables.py``); this package
may not import it, so :data:`users_view` names the columns it reads (who, role, scope).
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, String, Table, Text, column, table

from alerts.incidents.tables import metadata

contact_links = Table(
    "contact_links",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("address", String(64), primary_key=True),
    Column("username", String(100), nullable=False, index=True),
    Column("linked_ns", BigInteger, nullable=False),
)

link_codes = Table(
    "link_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("username", String(100), nullable=False),
    Column("expires_ns", BigInteger, nullable=False, index=True),
)

chat_posts = Table(
    "chat_posts",
    metadata,
    Column("chat_id", String(32), primary_key=True),
    Column("message_id", BigInteger, primary_key=True),
    Column("delivery_id", String(32), nullable=False, index=True),
    Column("incidents", JSON, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
)

chat_inbound = Table(
    "chat_inbound",
    metadata,
    Column("source", String(16), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("handled_ns", BigInteger, nullable=False),
    Index("ix_chat_inbound_handled_ns", "handled_ns"),
)

chat_state = Table(
    "chat_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(200), nullable=False),
)

CHAT_TABLES = (contact_links, link_codes, chat_posts, chat_inbound, chat_state)

users_view = table(
    "users", column("username"), column("role"), column("regencies"), column("province")
)
