"""Helpers for the API's tests: an app on given stores, one API key per role, a fixed clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from fastapi import FastAPI

from alerts.incidents.memory import MemoryIncidentStore
from alerts.model import AlertEvent, EventKind, Incident, IncidentState, Transition
from alerts.notify.memory import MemoryNotifyStore
from alerts.settings import DatabaseSettings
from dashboards.api import create_app
from dashboards.api.accounts import Accounts, Role
from dashboards.api.app import sql_engine
from dashboards.api.context import ApiContext
from dashboards.settings import ApiSettings, Settings
from devices.levels import Level
from devices.stations import StaticRegistry, load_stations
from ingest.storage.base import Storage
from tests.conftest import STATIONS_FILE

NS = 1_000_000_000
NOW_NS = 1_780_000_000 * NS  # 2026-05-28T20:26:40Z
PASSWORD = "correct horse battery"
SECRET_KEY = b"test-secret-" + b"x" * 20  # api.secret_key: signs acknowledgement links
# Argon2 with the cheapest parameters: the tests check the flow, not the hash's cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@dataclass
class Clock:
    """A settable clock in nanoseconds."""

    now_ns: int = NOW_NS

    def __call__(self) -> int:
        return self.now_ns


@dataclass
class ApiHarness:
    """An app, its context, and one API key and one password user per role."""

    app: FastAPI
    clock: Clock
    keys: dict[Role, str] = field(default_factory=dict)

    @property
    def ctx(self) -> ApiContext:
        found: ApiContext = self.app.state.siaga
        return found

    @property
    def incidents(self) -> MemoryIncidentStore:
        store = self.ctx.incidents
        assert isinstance(store, MemoryIncidentStore)
        return store

    def client(self, role: Role | None = None) -> httpx.AsyncClient:
        """A client authenticated by the role's API key (anonymous when None)."""
        headers = {} if role is None else {"Authorization": f"Bearer {self.keys[role]}"}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://test", headers=headers
        )


def registry() -> StaticRegistry:
    """The seed stations."""
    return load_stations(STATIONS_FILE)


def settings(database_url: str, tmp_path: Path, **api: object) -> Settings:
    """Settings for a test app."""
    return Settings(
        api=ApiSettings(secret_key=SECRET_KEY.decode(), public_url="http://test", **api),  # type: ignore[arg-type]
        database=DatabaseSettings(url=database_url),
    )


def build(
    database_url: str,
    storage: Storage,
    tmp_path: Path,
    *,
    incidents: MemoryIncidentStore | None = None,
    live: bool = False,
    **api: object,
) -> ApiHarness:
    """An app with one user and one API key per role (``<role>`` / :data:`PASSWORD`)."""
    clock = Clock()
    accounts = Accounts(sql_engine(database_url), hasher=FAST_HASHER)
    accounts.create_tables()
    app = create_app(
        settings(database_url, tmp_path, **api),
        storage=storage,
        registry=registry(),
        incidents_store=incidents if incidents is not None else MemoryIncidentStore(),
        notify=MemoryNotifyStore(),
        accounts=accounts,
        clock_ns=clock,
        live=live,
    )
    harness = ApiHarness(app, clock)
    for role in Role:
        accounts.add_user(role.value, role, PASSWORD, NOW_NS)
        _, key = accounts.add_key(f"{role.value}-key", role, "test", NOW_NS)
        harness.keys[role] = key
    return harness


def incident(
    incident_id: int,
    station: str = "tb-menggala",
    *,
    state: IncidentState = IncidentState.FIRING,
    severity: Level = Level.SIAGA,
    updated_ns: int = NOW_NS - 60 * NS,
    regency: str = "Tulang Bawang",
) -> Incident:
    """An incident of the level rule, with one transition."""
    event = AlertEvent(
        at_ns=updated_ns,
        subject=station,
        kind=EventKind.LEVEL,
        rule="level",
        firing=state is not IncidentState.RESOLVED,
        severity=severity,
        previous=Level.WASPADA,
        value=360.0,
        detail=f"{station} reached {severity.name}",
    )
    return Incident(
        id=incident_id,
        subject=station,
        rule="level",
        kind=EventKind.LEVEL,
        state=state,
        severity=severity,
        opened_ns=updated_ns - 600 * NS,
        updated_ns=updated_ns,
        resolved_ns=updated_ns if state is IncidentState.RESOLVED else None,
        labels={"station": station, "regency": regency, "kind": "level"},
        last_event=event,
        transitions=(Transition(station, "level", None, state, event),),
    )


@asynccontextmanager
async def session(
    harness: ApiHarness, username: str
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client signed in as ``username`` by password, and its CSRF token."""
    async with harness.client() as client:
        response = await client.post(
            "/api/v1/login", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        yield client, response.json()["csrf_token"]


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A Server-Sent Events stream's events as (event name, parsed JSON data)."""
    kind = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield kind, json.loads(line.removeprefix("data: "))
