"""Where two-way channels keep links, one-time codes, posted messages and handled updates.

Two implementations with one behaviour: :class:`SqlChatStore` (the incident database, tables in
``chat_tables.py``) and :class:`MemoryChatStore`. Link codes are random (40 bits from an
alphabet without look-alikes), single use, expiring, and stored only as their SHA-256: the code
itself is shown once, to the person who asked for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from alerts.incidents.database import create_sql_engine
from alerts.incidents.tables import metadata
from alerts.notify.chat import Person
from alerts.notify.chat_tables import (
    CHAT_TABLES,
    chat_inbound,
    chat_posts,
    chat_state,
    contact_links,
    link_codes,
    users_view,
)
from devices.scopes import DEPLOYMENT, Scope

_T = TypeVar("_T")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
POSTS_KEPT_NS = 14 * 86400 * 1_000_000_000
"""How far back a post is edited when its incident is acknowledged."""


def new_code() -> str:
    """A one-time code: 8 characters, 40 bits, easy to type on a phone."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def code_hash(code: str) -> str:
    """What is stored of a code (case and spaces forgiven)."""
    return hashlib.sha256("".join(code.split()).upper().encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Post:
    """A message the bot posted: where, for which delivery and incidents, with which text."""

    chat_id: str
    message_id: int
    delivery_id: str
    incidents: tuple[int, ...]
    text: str
    created_ns: int = 0


class ChatStore(Protocol):
    """What the two-way channels keep. All methods are async."""

    async def issue_code(self, channel: str, username: str, now_ns: int, valid_s: float) -> str:
        """A new one-time code linking ``username`` on ``channel`` (returned once)."""
        ...

    async def redeem_code(self, channel: str, code: str, address: str, now_ns: int) -> str | None:
        """Link ``address`` to the code's user (consuming it); the username, or None."""
        ...

    async def link(self, channel: str, address: str, username: str, now_ns: int) -> None:
        """Link an address (a phone number) to a user, replacing any earlier link of it."""
        ...

    async def unlink(self, channel: str, username: str) -> int:
        """Remove a user's links on ``channel``; how many."""
        ...

    async def person(self, channel: str, address: str) -> Person | None:
        """The user an address acts as, with their role (None: not linked or user gone)."""
        ...

    async def handled(self, source: str, key: str) -> bool:
        """Whether an inbound update was handled already."""
        ...

    async def mark_handled(
        self, source: str, key: str, now_ns: int, state: Mapping[str, str] | None = None
    ) -> None:
        """Record an update as handled and, in the same transaction, named state values."""
        ...

    async def state(self, key: str) -> str | None:
        """A named state value."""
        ...

    async def add_post(self, post: Post) -> None:
        """Remember a posted message."""
        ...

    async def posts_for(self, incident_id: int, since_ns: int) -> list[Post]:
        """Posts carrying an incident, posted at or after ``since_ns``."""
        ...


class SqlChatStore:
    """:class:`ChatStore` on the incident database (its migrations create the tables)."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None) -> None:
        if engine is None:
            if url is None:
                raise ValueError("SqlChatStore needs a URL or an engine")
            engine = create_sql_engine(url)
        self.engine = engine

    def create_tables(self) -> None:
        """Create the tables where missing (Alembic does this in production)."""
        metadata.create_all(self.engine, tables=list(CHAT_TABLES))

    async def aclose(self) -> None:
        """Release connections."""
        await asyncio.to_thread(self.engine.dispose)

    async def _run(self, function: Callable[[], _T]) -> _T:
        return await asyncio.to_thread(function)

    async def issue_code(self, channel: str, username: str, now_ns: int, valid_s: float) -> str:
        """See :meth:`ChatStore.issue_code`."""
        code = new_code()

        def run() -> None:
            with self.engine.begin() as connection:
                connection.execute(delete(link_codes).where(link_codes.c.expires_ns <= now_ns))
                connection.execute(
                    insert(link_codes).values(
                        code_hash=code_hash(code),
                        channel=channel,
                        username=username,
                        expires_ns=now_ns + int(valid_s * 1e9),
                    )
                )

        await self._run(run)
        return code

    async def redeem_code(self, channel: str, code: str, address: str, now_ns: int) -> str | None:
        """See :meth:`ChatStore.redeem_code`."""
        digest = code_hash(code)

        def run() -> str | None:
            with self.engine.begin() as connection:
                found = connection.execute(
                    delete(link_codes)
                    .where(
                        link_codes.c.code_hash == digest,
                        link_codes.c.channel == channel,
                        link_codes.c.expires_ns > now_ns,
                    )
                    .returning(link_codes.c.username)
                ).first()
                if found is None:
                    return None
                _replace_link(connection, channel, address, found.username, now_ns)
                return str(found.username)

        return await self._run(run)

    async def link(self, channel: str, address: str, username: str, now_ns: int) -> None:
        """See :meth:`ChatStore.link`."""

        def run() -> None:
            with self.engine.begin() as connection:
                _replace_link(connection, channel, address, username, now_ns)

        await self._run(run)

    async def unlink(self, channel: str, username: str) -> int:
        """See :meth:`ChatStore.unlink`."""

        def run() -> int:
            with self.engine.begin() as connection:
                return int(
                    connection.execute(
                        delete(contact_links).where(
                            contact_links.c.channel == channel,
                            contact_links.c.username == username,
                        )
                    ).rowcount
                )

        return await self._run(run)

    async def person(self, channel: str, address: str) -> Person | None:
        """See :meth:`ChatStore.person`."""
        query = (
            select(
                users_view.c.username,
                users_view.c.role,
                users_view.c.regencies,
                users_view.c.province,
            )
            .select_from(
                contact_links.join(users_view, users_view.c.username == contact_links.c.username)
            )
            .where(contact_links.c.channel == channel, contact_links.c.address == address)
        )

        def run() -> Person | None:
            with self.engine.connect() as connection:
                row = connection.execute(query).first()
            if row is None:
                return None
            regencies = row.regencies
            if isinstance(regencies, str):  # a JSON column read without its type
                regencies = json.loads(regencies)
            scope = Scope.of(regencies or (), row.province)
            return Person(str(row.username), str(row.role), scope)

        return await self._run(run)

    async def handled(self, source: str, key: str) -> bool:
        """See :meth:`ChatStore.handled`."""
        query = select(chat_inbound.c.key).where(
            chat_inbound.c.source == source, chat_inbound.c.key == key
        )

        def run() -> bool:
            with self.engine.connect() as connection:
                return connection.execute(query).first() is not None

        return await self._run(run)

    async def mark_handled(
        self, source: str, key: str, now_ns: int, state: Mapping[str, str] | None = None
    ) -> None:
        """See :meth:`ChatStore.mark_handled`."""

        def run() -> None:
            with self.engine.begin() as connection:
                try:
                    with connection.begin_nested():
                        connection.execute(
                            insert(chat_inbound).values(source=source, key=key, handled_ns=now_ns)
                        )
                except IntegrityError:
                    pass  # handled before: the state below is still brought forward
                for name, value in (state or {}).items():
                    changed = connection.execute(
                        update(chat_state).where(chat_state.c.key == name).values(value=value)
                    ).rowcount
                    if not changed:
                        connection.execute(insert(chat_state).values(key=name, value=value))

        await self._run(run)

    async def state(self, key: str) -> str | None:
        """See :meth:`ChatStore.state`."""

        def run() -> str | None:
            with self.engine.connect() as connection:
                row = connection.execute(
                    select(chat_state.c.value).where(chat_state.c.key == key)
                ).first()
            return None if row is None else str(row.value)

        return await self._run(run)

    async def add_post(self, post: Post) -> None:
        """See :meth:`ChatStore.add_post`."""

        def run() -> None:
            with self.engine.begin() as connection:
                connection.execute(
                    delete(chat_posts).where(
                        chat_posts.c.created_ns < post.created_ns - POSTS_KEPT_NS
                    )
                )
                connection.execute(
                    insert(chat_posts).values(
                        chat_id=post.chat_id,
                        message_id=post.message_id,
                        delivery_id=post.delivery_id,
                        incidents=list(post.incidents),
                        text=post.text,
                        created_ns=post.created_ns,
                    )
                )

        await self._run(run)

    async def posts_for(self, incident_id: int, since_ns: int) -> list[Post]:
        """See :meth:`ChatStore.posts_for`."""
        query = (
            select(chat_posts)
            .where(chat_posts.c.created_ns >= since_ns)
            .order_by(chat_posts.c.created_ns)
        )

        def run() -> list[Post]:
            with self.engine.connect() as connection:
                rows = connection.execute(query).mappings().all()
            posts = [
                Post(
                    str(r["chat_id"]),
                    int(r["message_id"]),
                    str(r["delivery_id"]),
                    tuple(int(i) for i in r["incidents"]),
                    str(r["text"]),
                    int(r["created_ns"]),
                )
                for r in rows
            ]
            return [p for p in posts if incident_id in p.incidents]

        return await self._run(run)


def _replace_link(
    connection: Connection, channel: str, address: str, username: str, now_ns: int
) -> None:
    connection.execute(
        delete(contact_links).where(
            contact_links.c.channel == channel, contact_links.c.address == address
        )
    )
    connection.execute(
        insert(contact_links).values(
            channel=channel, address=address, username=username, linked_ns=now_ns
        )
    )


@dataclass(slots=True)
class MemoryChatStore:
    """:class:`ChatStore` in memory; ``roles`` and ``scopes`` stand for the users table."""

    roles: dict[str, str] = field(default_factory=dict)
    scopes: dict[str, Scope] = field(default_factory=dict)
    links: dict[tuple[str, str], str] = field(default_factory=dict)
    codes: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    inbound: set[tuple[str, str]] = field(default_factory=set)
    values: dict[str, str] = field(default_factory=dict)
    posts: list[Post] = field(default_factory=list)

    async def issue_code(self, channel: str, username: str, now_ns: int, valid_s: float) -> str:
        """See :meth:`ChatStore.issue_code`."""
        code = new_code()
        self.codes[code_hash(code)] = (channel, username, now_ns + int(valid_s * 1e9))
        return code

    async def redeem_code(self, channel: str, code: str, address: str, now_ns: int) -> str | None:
        """See :meth:`ChatStore.redeem_code`."""
        found = self.codes.get(code_hash(code))
        if found is None or found[0] != channel or found[2] <= now_ns:
            return None
        del self.codes[code_hash(code)]
        self.links[(channel, address)] = found[1]
        return found[1]

    async def link(self, channel: str, address: str, username: str, now_ns: int) -> None:
        """See :meth:`ChatStore.link`."""
        self.links[(channel, address)] = username

    async def unlink(self, channel: str, username: str) -> int:
        """See :meth:`ChatStore.unlink`."""
        gone = [k for k, v in self.links.items() if k[0] == channel and v == username]
        for key in gone:
            del self.links[key]
        return len(gone)

    async def person(self, channel: str, address: str) -> Person | None:
        """See :meth:`ChatStore.person`."""
        username = self.links.get((channel, address))
        if username is None or username not in self.roles:
            return None
        return Person(username, self.roles[username], self.scopes.get(username, DEPLOYMENT))

    async def handled(self, source: str, key: str) -> bool:
        """See :meth:`ChatStore.handled`."""
        return (source, key) in self.inbound

    async def mark_handled(
        self, source: str, key: str, now_ns: int, state: Mapping[str, str] | None = None
    ) -> None:
        """See :meth:`ChatStore.mark_handled`."""
        self.inbound.add((source, key))
        self.values.update(state or {})

    async def state(self, key: str) -> str | None:
        """See :meth:`ChatStore.state`."""
        return self.values.get(key)

    async def add_post(self, post: Post) -> None:
        """See :meth:`ChatStore.add_post`."""
        self.posts.append(post)

    async def posts_for(self, incident_id: int, since_ns: int) -> list[Post]:
        """See :meth:`ChatStore.posts_for`."""
        return [p for p in self.posts if incident_id in p.incidents and p.created_ns >= since_ns]


def incident_ids(alerts: Sequence[Mapping[str, object]]) -> tuple[int, ...]:
    """The distinct incidents of a delivery's ``payload["alerts"]``, in order."""
    seen: dict[int, None] = {}
    for alert in alerts:
        value = alert.get("incident_id")
        if isinstance(value, int):
            seen.setdefault(value, None)
    return tuple(seen)
