"""Users, API keys, sessions and used acknowledgement links, in the incident database.

Synchronous SQLAlchemy Core: the API calls these from FastAPI's thread pool. Passwords are
hashed with Argon2 (argon2-cffi); API keys and session tokens are random 256-bit values, so a
SHA-256 of each suffices and lets a lookup be one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from dashboards.api.tables import API_TABLES, ack_link_uses, api_keys, sessions, users
from devices.scopes import DEPLOYMENT, Scope
from ingest.errors import InputError

API_KEY_PREFIX = "sk_"
ACK_USES_KEPT_NS = 30 * 86400 * 1_000_000_000


class Role(StrEnum):
    """What someone may do: read (viewer), act on incidents (operator), administer (admin)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Order of power: each role may do what the roles below it may."""
        return _RANKS[self]


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class AccountError(InputError):
    """A change to users or keys that cannot be made (the message says why).

    One bad request (a name taken, a password too short); also a ``ValueError``.
    """


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a user through a session, or a machine through an API key.

    Attributes:
        name: The username, or ``key:<name>`` for an API key.
        role: What they may do.
        csrf_token: For sessions, the token form posts and unsafe requests must repeat.
        scope: Which regencies they may see and act on.
    """

    name: str
    role: Role
    csrf_token: str | None = None
    scope: Scope = DEPLOYMENT


@dataclass(frozen=True, slots=True)
class User:
    """A user as listed (never with the hash)."""

    id: int
    username: str
    role: Role
    created_ns: int
    scope: Scope = DEPLOYMENT


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as listed (never with the key)."""

    id: int
    name: str
    role: Role
    created_by: str
    created_ns: int
    scope: Scope = DEPLOYMENT


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _scope_columns(scope: Scope) -> dict[str, object]:
    return {"regencies": sorted(scope.regencies) or None, "province": scope.province}


def _scope(row: Any) -> Scope:
    """A row's scope; NULLs (every row from before scopes) are the whole deployment."""
    return Scope.of(row.regencies or (), row.province)


class Accounts:
    """Users, keys and sessions on one SQLAlchemy engine."""

    def __init__(self, engine: Engine, hasher: PasswordHasher | None = None) -> None:
        self.engine = engine
        self._hasher = hasher or PasswordHasher()
        # Verifying a missing user still costs one hash, so timing does not reveal names.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def create_tables(self) -> None:
        """Create the API's tables where missing (Alembic does this in production)."""
        from alerts.incidents.tables import metadata  # noqa: PLC0415 - only for this call

        metadata.create_all(self.engine, tables=list(API_TABLES))

    # -- users --------------------------------------------------------------------------------

    def add_user(
        self, username: str, role: Role, password: str, now_ns: int, scope: Scope = DEPLOYMENT
    ) -> User:
        """Create a user (of the whole deployment unless ``scope`` says otherwise).

        Raises:
            AccountError: The name is taken or the password too short.
        """
        if len(password) < 10:
            raise AccountError("a password needs at least 10 characters")
        if not username or len(username) > 100:
            raise AccountError("a username needs 1 to 100 characters")
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    insert(users).values(
                        username=username,
                        password_hash=self._hasher.hash(password),
                        role=role.value,
                        created_ns=now_ns,
                        **_scope_columns(scope),
                    )
                )
                (user_id,) = result.inserted_primary_key or (0,)
        except IntegrityError:
            raise AccountError(f"user {username!r} exists already") from None
        return User(int(user_id), username, role, now_ns, scope)

    def list_users(self) -> list[User]:
        """Every user, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.username)).all()
        return [User(r.id, r.username, Role(r.role), r.created_ns, _scope(r)) for r in rows]

    def get_user(self, username: str) -> User | None:
        """One user, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        return (
            None
            if row is None
            else User(row.id, row.username, Role(row.role), row.created_ns, _scope(row))
        )

    def remove_user(self, username: str, *, keep_an_admin: bool = False) -> bool:
        """Delete a user and their sessions; False when there was none.

        Args:
            username: Who.
            keep_an_admin: Refuse to remove the last admin of the whole deployment (the API
                does: no one could administer Siaga through it after; ``siaga users`` on the
                host can add one).

        Raises:
            AccountError: ``keep_an_admin`` and the user is the deployment's last admin.
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                select(users.c.id, users.c.role, users.c.regencies, users.c.province).where(
                    users.c.username == username
                )
            ).first()
            if row is None:
                return False
            if keep_an_admin and row.role == Role.ADMIN.value and _scope(row).deployment_wide:
                admins = conn.execute(
                    select(users.c.regencies, users.c.province).where(
                        users.c.role == Role.ADMIN.value
                    )
                ).all()
                if sum(_scope(a).deployment_wide for a in admins) <= 1:
                    raise AccountError(f"{username!r} is the last admin; add another admin first")
            conn.execute(delete(sessions).where(sessions.c.user_id == row.id))
            conn.execute(delete(users).where(users.c.id == row.id))
        return True

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password is right, else None (in constant-ish time)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        try:
            self._hasher.verify(row.password_hash if row else self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(row.password_hash):
            with self.engine.begin() as conn:
                conn.execute(
                    users.update()
                    .where(users.c.id == row.id)
                    .values(password_hash=self._hasher.hash(password))
                )
        return User(row.id, row.username, Role(row.role), row.created_ns, _scope(row))

    # -- sessions -----------------------------------------------------------------------------

    def open_session(self, user: User, now_ns: int, ttl_s: int) -> tuple[str, str]:
        """A new session for ``user``: ``(cookie value, CSRF token)``."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_ns <= now_ns))
            conn.execute(
                insert(sessions).values(
                    token_hash=_digest(token),
                    user_id=user.id,
                    csrf_token=csrf,
                    created_ns=now_ns,
                    expires_ns=now_ns + ttl_s * 1_000_000_000,
                )
            )
        return token, csrf

    def session_principal(self, token: str, now_ns: int) -> Principal | None:
        """Who holds this session cookie, if it is valid and unexpired."""
        query = (
            select(
                users.c.username,
                users.c.role,
                users.c.regencies,
                users.c.province,
                sessions.c.csrf_token,
            )
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.token_hash == _digest(token), sessions.c.expires_ns > now_ns)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Principal(row.username, Role(row.role), row.csrf_token, _scope(row))

    def close_session(self, token: str) -> None:
        """End a session (log out)."""
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == _digest(token)))

    # -- API keys -----------------------------------------------------------------------------

    def add_key(
        self, name: str, role: Role, created_by: str, now_ns: int, scope: Scope = DEPLOYMENT
    ) -> tuple[ApiKey, str]:
        """A new key: its record and the key itself (shown once, never stored).

        Raises:
            AccountError: The name is taken.
        """
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    insert(api_keys).values(
                        name=name,
                        key_hash=_digest(secret),
                        role=role.value,
                        created_by=created_by,
                        created_ns=now_ns,
                        **_scope_columns(scope),
                    )
                )
                (key_id,) = result.inserted_primary_key or (0,)
        except IntegrityError:
            raise AccountError(f"an API key named {name!r} exists already") from None
        return ApiKey(int(key_id), name, role, created_by, now_ns, scope), secret

    def list_keys(self) -> list[ApiKey]:
        """Every key's record, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.name)).all()
        return [
            ApiKey(r.id, r.name, Role(r.role), r.created_by, r.created_ns, _scope(r)) for r in rows
        ]

    def remove_key(self, name: str) -> bool:
        """Revoke a key; False when there was none."""
        with self.engine.begin() as conn:
            return conn.execute(delete(api_keys).where(api_keys.c.name == name)).rowcount > 0

    def key_principal(self, secret: str) -> Principal | None:
        """Who holds this API key."""
        if not secret.startswith(API_KEY_PREFIX):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    api_keys.c.name, api_keys.c.role, api_keys.c.regencies, api_keys.c.province
                ).where(api_keys.c.key_hash == _digest(secret))
            ).first()
        if row is None:
            return None
        return Principal(f"key:{row.name}", Role(row.role), scope=_scope(row))

    # -- acknowledgement links ----------------------------------------------------------------

    def use_ack_nonce(self, nonce: str, incident_id: int, recipient: str, now_ns: int) -> bool:
        """Record a link's use; False when it was used before.

        Uses older than :data:`ACK_USES_KEPT_NS` are forgotten: every link expires long before.
        """
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    delete(ack_link_uses).where(ack_link_uses.c.used_ns < now_ns - ACK_USES_KEPT_NS)
                )
                conn.execute(
                    insert(ack_link_uses).values(
                        nonce=nonce, incident_id=incident_id, recipient=recipient, used_ns=now_ns
                    )
                )
        except IntegrityError:
            return False
        return True

    def ping(self) -> None:
        """Raise when the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(select(1))
