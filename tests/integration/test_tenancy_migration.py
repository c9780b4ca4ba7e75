"""Upgrading to scopes: a database of the schema before them keeps every user, key, silence and
incident, and everyone in it becomes deployment-wide (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from alerts.incidents.migrations import downgrade, upgrade
from alerts.incidents.store import SqlIncidentStore
from alerts.notify.sqlstore import SqlNotifyStore
from dashboards.api.accounts import Accounts, Role
from dashboards.api.audit import AuditLog, Change, entries
from devices.scopes import DEPLOYMENT, Scope

pytestmark = pytest.mark.integration


def _seed_the_schema_before_scopes(url: str, hasher: PasswordHasher) -> None:
    upgrade(url, "0003_notify")
    engine = create_engine(url)
    try:
        with engine.begin() as c:
            for name, role in [("ana", "admin"), ("budi", "operator")]:
                c.execute(
                    text(
                        "INSERT INTO users (username, password_hash, role, created_ns) "
                        "VALUES (:n, :h, :r, 1)"
                    ),
                    {"n": name, "h": hasher.hash("a-long-password"), "r": role},
                )
            c.execute(
                text(
                    "INSERT INTO api_keys (name, key_hash, role, created_by, created_ns) "
                    "VALUES ('grafana', :h, 'viewer', 'ana', 2)"
                ),
                {"h": "0" * 64},
            )
            c.execute(
                text(
                    "INSERT INTO incidents (id, subject, rule, kind, state, severity, regency, "
                    "river, opened_ns, updated_ns, labels) VALUES (7, 'tb-menggala', 'level', "
                    "'level', 'firing', 'SIAGA', 'Tulang Bawang', 'Way Tulang Bawang', 3, 4, "
                    "'{}')"
                )
            )
            c.execute(
                text(
                    "INSERT INTO notify_silences (matchers, starts_ns, ends_ns, created_by, "
                    'comment) VALUES (\'[{"name": "station", "value": "x", "op": '
                    "\"=\"}]', 1, 9000000000000000000, 'ana', 'maintenance')"
                )
            )
    finally:
        engine.dispose()


async def test_every_user_key_silence_and_incident_is_kept_and_deployment_wide(
    sql_url: str,
) -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=1024)
    _seed_the_schema_before_scopes(sql_url, hasher)
    upgrade(sql_url)
    accounts = Accounts(create_engine(sql_url), hasher)
    try:
        users = {u.username: u for u in accounts.list_users()}
        assert set(users) == {"ana", "budi"}
        assert {u.scope for u in users.values()} == {DEPLOYMENT}
        assert users["ana"].role is Role.ADMIN
        signed_in = accounts.authenticate("budi", "a-long-password")
        assert signed_in is not None
        assert signed_in.scope == DEPLOYMENT
        [key] = accounts.list_keys()
        assert (key.name, key.scope) == ("grafana", DEPLOYMENT)
        # New rows carry their scope.
        jember = accounts.add_user("citra", Role.ADMIN, "a-long-password", 5, Scope.of(["Jember"]))
        assert accounts.get_user("citra") == jember
        assert accounts.get_user("citra").scope == Scope.of(["Jember"])  # type: ignore[union-attr]
    finally:
        accounts.engine.dispose()
    async with SqlIncidentStore(sql_url) as incidents:
        incident = await incidents.get(7)
        assert incident is not None
        assert incident.labels.get("regency", "Tulang Bawang") == "Tulang Bawang"
        assert [i.id for i in await incidents.list()] == [7]
    async with SqlNotifyStore(sql_url, migrate=False) as notify:
        [silence] = await notify.silences()
        assert silence.regencies is None
    downgrade(sql_url, "0003_notify")
    upgrade(sql_url)


def test_the_database_refuses_to_change_or_delete_an_audit_row(sql_url: str) -> None:
    upgrade(sql_url)
    log = AuditLog(create_engine(sql_url))
    try:
        log.add(entries(Change(None, "ana", "user.add", "user", "budi", "10.0.0.1"), 1))
        for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"), log.engine.begin() as c:
                c.execute(text(statement))
        assert [e.actor for e in log.read(regencies=None)] == ["ana"]
    finally:
        log.engine.dispose()
    downgrade(sql_url, "base")
    upgrade(sql_url)
