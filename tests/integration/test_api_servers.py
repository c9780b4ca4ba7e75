"""The API on real servers: InfluxDB for readings, SQLite and PostgreSQL for incidents, silences
and users.

The same role matrix as the component tier runs against each SQL database; the incidents come
from the real SQL incident store (committed as the engine commits them).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.incidents.store import SqlIncidentStore
from alerts.model import AlertEvent, EventKind, IncidentState, Transition
from alerts.notify.acklink import signed_ack_links
from alerts.notify.sqlstore import SqlNotifyStore
from alerts.pipeline.silence import Matcher, Silence
from dashboards.api import create_app
from dashboards.api.accounts import Accounts, Role
from devices import Reading
from devices.levels import Level
from ingest.batch import Batch
from ingest.settings import InfluxSettings
from ingest.storage.influx import InfluxStorage, registry_tags
from ops.servers import InfluxServer, free_port
from tests.apitools import FAST_HASHER, PASSWORD, Clock, registry, settings
from tests.component.test_api_roles import ENDPOINTS, EXAMPLES

pytestmark = pytest.mark.integration

NS = 1_000_000_000


@dataclass
class Servers:
    """An app over real stores, with its clock, stores and one API key per role."""

    app: Any
    clock: Clock
    incidents: SqlIncidentStore
    storage: InfluxStorage
    keys: dict[Role, str]

    def client(self, role: Role | None = None) -> httpx.AsyncClient:
        headers = {} if role is None else {"Authorization": f"Bearer {self.keys[role]}"}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://test", headers=headers
        )


def _transition(station: str, at_ns: int, severity: Level) -> Transition:
    event = AlertEvent(
        at_ns=at_ns,
        subject=station,
        kind=EventKind.LEVEL,
        rule="level",
        firing=True,
        severity=severity,
        previous=Level.NORMAL,
        value=360.0,
        detail=f"{station} at {severity.name}",
    )
    return Transition(station, "level", None, IncidentState.FIRING, event)


@pytest.fixture(params=["sqlite", "postgresql"])
async def servers(
    request: pytest.FixtureRequest, tmp_path: Path, influx_session: InfluxServer, database: str
) -> AsyncIterator[Servers]:
    url = (
        f"sqlite:///{tmp_path}/siaga.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    now_ns = time.time_ns()
    clock = Clock(now_ns)
    stations = registry()
    async with (
        SqlIncidentStore(url) as incidents,
        SqlNotifyStore(url, migrate=False) as notify,
        InfluxStorage(
            InfluxSettings(url=influx_session.url, database=database), registry_tags(stations)
        ) as storage,
    ):
        await storage.prepare()
        labels = {"tb-menggala": {"regency": "Tulang Bawang", "station": "tb-menggala"}}
        await incidents.commit(
            [_transition("tb-menggala", now_ns - 600 * NS, Level.SIAGA)], {}, labels
        )
        await notify.add_silence(
            Silence(
                matchers=[Matcher(name="station", value="x")],
                starts_ns=now_ns,
                ends_ns=now_ns + 3600 * NS,
                created_by="test",
                comment="maintenance",
            )
        )
        accounts = Accounts(incidents.engine, hasher=FAST_HASHER)
        keys = {}
        for role in Role:
            accounts.add_user(role.value, role, PASSWORD, now_ns)
            keys[role] = accounts.add_key(f"{role.value}-key", role, "test", now_ns)[1]
        app = create_app(
            settings(url, tmp_path),
            storage=storage,
            registry=stations,
            incidents_store=incidents,
            notify=notify,
            accounts=accounts,
            clock_ns=clock,
            live=False,
        )
        yield Servers(app, clock, incidents, storage, keys)


async def test_each_role_against_each_endpoint(servers: Servers) -> None:
    for method, path, body, needs in ENDPOINTS:
        for role in (None, Role.VIEWER, Role.OPERATOR, Role.ADMIN):
            async with servers.client(role) as client:
                response = await client.request(method, path.format(**EXAMPLES), json=body)
            allowed = needs is None or (role is not None and role.rank >= needs.rank)
            expected = "2xx" if allowed else ("401" if role is None else "403")
            got = "2xx" if response.status_code < 300 else str(response.status_code)
            assert got == expected, (method, path, role, response.status_code, response.text)
            if allowed and method == "DELETE":
                break


async def test_stations_readings_and_incidents_from_the_real_stores(servers: Servers) -> None:
    now_ns = servers.clock.now_ns
    await servers.storage.write(
        Batch(
            [
                Reading("tb-menggala", now_ns - 3000 * NS, {"water_level_cm": 300.0}),
                Reading("tb-menggala", now_ns - 60 * NS, {"water_level_cm": 350.0}),
            ]
        )
    )
    async with servers.client(Role.OPERATOR) as client:
        station = (await client.get("/api/v1/stations/tb-menggala")).json()
        assert station["value_cm"] == 350.0
        assert station["level"] == "SIAGA"
        assert station["trend_cm_h"] == pytest.approx(50 / (2940 / 3600), abs=0.01)
        listed = (await client.get("/api/v1/stations")).json()
        assert listed["count"] == len(registry().stations())
        hourly = (
            await client.get(
                "/api/v1/stations/tb-menggala/readings",
                params={"window": "1h", "start": _rfc3339(now_ns - 7200 * NS)},
            )
        ).json()
        assert sum(w["count"] for w in hourly["data"]) == 2
        (active,) = (await client.get("/api/v1/incidents", params={"active": "true"})).json()[
            "data"
        ]
        acked = await client.post(f"/api/v1/incidents/{active['id']}/ack", json={"comment": "ok"})
        assert acked.status_code == 200
    stored = await servers.incidents.get(active["id"])
    assert stored is not None
    assert stored.acknowledged is not None
    assert stored.acknowledged.by == "key:operator-key"


async def test_an_ack_link_works_once_against_the_sql_database(servers: Servers) -> None:
    (incident,) = await servers.incidents.list()
    key = servers.app.state.siaga.secret_key
    link = signed_ack_links("http://x", key)(incident.id)
    assert link is not None
    path = link.removeprefix("http://x").replace("/ack?", "/ack-link?")
    async with servers.client() as client:
        assert (await client.post(path, data={"by": "siti"})).status_code == 200
        assert (await client.post(path, data={"by": "siti"})).status_code == 409
    stored = await servers.incidents.get(incident.id)
    assert stored is not None
    assert stored.acknowledged is not None
    assert stored.acknowledged.by == "siti"


async def test_readyz_says_which_dependency_fails(tmp_path: Path) -> None:
    stations = registry()
    url = f"sqlite:///{tmp_path}/siaga.db"
    async with InfluxStorage(
        InfluxSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=2), registry_tags(stations)
    ) as unreachable:
        app = create_app(
            settings(url, tmp_path), storage=unreachable, registry=stations, live=False
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert "unreachable" in response.json()["checks"]["storage"]


def _rfc3339(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS, UTC).isoformat()
