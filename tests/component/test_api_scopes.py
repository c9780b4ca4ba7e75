"""The scope test: every operation of /openapi.json, as an admin of regency A (or of a province)
against the data of every other regency (B): no B data in any answer, no write on B accepted.

Every station of the seed registry has a reading, health, a rejection, an incident, a CAP
document, a silence of its regency, a user and an API key of its regency. The caller is an
*admin* key of the scope, so a role check can never hide a missing scope check. Path
parameters name B's objects (an incident, a station, a silence, a user, a key, a CAP
document), query parameters name B's regency and station, and bodies try to reach B.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from alerts.model import IncidentState
from alerts.notify.cap import CapDocument
from alerts.pipeline.silence import Matcher, Silence
from dashboards.api.accounts import Role
from devices import Reading, Reason, Rejection
from devices.health import StationHealth
from devices.scopes import Scope
from devices.stations import Station
from ingest.batch import Batch, StoredRejection
from ingest.storage.memory import MemoryStorage
from ops.servers import free_port
from tests.apitools import NOW_NS, NS, ApiHarness, build, incident, registry, sse_events
from tests.helpers import eventually

# Operations that the walk does not call, and why (each is tested where named).
NOT_WALKED = {
    ("POST", "/api/v1/login"): "names no object; /me after signing in is walked",
    ("GET", "/api/v1/incidents/{incident_id}/ack"): "a signed link (exp, sig), no caller",
    ("POST", "/api/v1/incidents/{incident_id}/ack-link"): "a signed link (exp, sig), no caller",
    ("GET", "/api/v1/events"): "a stream: test_the_live_stream_carries_only_the_scope",
}


@dataclass(frozen=True)
class Case:
    """A scope and the regencies it reaches in the seed registry."""

    scope: Scope
    inside: frozenset[str]


CASES = {
    "regency": Case(Scope.of(["Jember"]), frozenset({"Jember"})),
    "province": Case(Scope.of(province="Lampung"), frozenset({"Way Kanan", "Tulang Bawang"})),
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class World:
    """The seeded API and the names of everything in it, by regency."""

    harness: ApiHarness
    stations: list[Station]
    incident_of: dict[str, int]  # station id -> incident id
    silence_of: dict[str, int]  # regency -> silence id
    key: str  # the scoped admin's API key

    def outside(self, inside: frozenset[str]) -> list[Station]:
        return [s for s in self.stations if s.regency not in inside]

    def forbidden(self, inside: frozenset[str]) -> set[str]:
        """Strings that only B's data contains."""
        tokens: set[str] = set()
        for station in self.outside(inside):
            tokens |= {station.id, station.name, f"cap-{station.id}"}
        for regency in {s.regency for s in self.outside(inside)}:
            tokens |= {regency, f"user-{_slug(regency)}", f"key-{_slug(regency)}"}
        return tokens


async def _seed(harness: ApiHarness, scope: Scope) -> World:
    ctx = harness.ctx
    stations = registry().stations()
    storage = ctx.storage
    assert isinstance(storage, MemoryStorage)
    readings, rejections = [], []
    incident_of: dict[str, int] = {}
    for number, station in enumerate(stations, start=100):
        metric, spec = next(iter(station.metrics.items()))
        readings.append(Reading(station.id, NOW_NS - 60 * NS, {metric: spec.min}))
        rejections.append(
            StoredRejection(
                Rejection(Reason.OUT_OF_RANGE, f"{metric} too high", station.id),
                f"siaga/{station.id}/telemetry",
                "{}",
                NOW_NS - 30 * NS,
            )
        )
        storage.health_snapshots[station.id] = StationHealth(
            station.id, NOW_NS - 60 * NS, 90, 96, 93.7, 0, 1.5
        )
        harness.incidents.put(incident(number, station.id, regency=station.regency))
        incident_of[station.id] = number
        # A CAP document per station (as the notification pipeline stores them).
        document = CapDocument(
            identifier=f"cap-{station.id}",
            incident_id=number,
            msg_type="Alert",
            sent="2026-05-28T20:00:00+07:00",
            sent_ns=NOW_NS - 120 * NS,
            station=station.id,
            headline=f"Siaga: {station.name}",
            xml=f"<alert>{station.name}</alert>",
        )
        ctx.notify._documents[document.identifier] = document  # type: ignore[attr-defined]
    await storage.write(Batch(readings, rejections))
    silence_of: dict[str, int] = {}
    for regency in sorted({s.regency for s in stations}):
        stored = await ctx.notify.add_silence(
            Silence(
                matchers=[Matcher(name="kind", value="level")],
                starts_ns=NOW_NS - 60 * NS,
                ends_ns=NOW_NS + 3600 * NS,
                created_by=f"user-{_slug(regency)}",
                comment=f"pemeliharaan {regency}",
                regencies=frozenset({regency}),
            )
        )
        silence_of[regency] = stored.id
        scoped = Scope.of([regency])
        ctx.accounts.add_user(f"user-{_slug(regency)}", Role.OPERATOR, "x" * 12, NOW_NS, scoped)
        ctx.accounts.add_key(f"key-{_slug(regency)}", Role.VIEWER, "test", NOW_NS, scoped)
    _, key = ctx.accounts.add_key("scoped-admin", Role.ADMIN, "test", NOW_NS, scope)
    return World(harness, stations, incident_of, silence_of, key)


def _operations(harness: ApiHarness) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in harness.app.openapi()["paths"].items()
        for method in operations
        if path.startswith("/api/")
    }


def _requests(world: World, inside: frozenset[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every walked operation, once per way of naming B: (method, url, httpx keywords)."""
    b_station = world.outside(inside)[0]
    b_regency = b_station.regency
    values = {
        "station_id": b_station.id,
        "incident_id": str(world.incident_of[b_station.id]),
        "silence_id": str(world.silence_of[b_regency]),
        "username": f"user-{_slug(b_regency)}",
        "name": f"key-{_slug(b_regency)}",
        "identifier": f"cap-{b_station.id}",
        "regency": b_regency,
    }
    bodies: dict[tuple[str, str], list[dict[str, Any]]] = {
        ("POST", "/api/v1/incidents/{incident_id}/ack"): [{"comment": "on it"}],
        ("POST", "/api/v1/incidents/{incident_id}/assign"): [{"assignee": "budi"}],
        ("POST", "/api/v1/silences"): [
            {"matchers": [{"name": "station", "value": b_station.id}], "comment": "x"},
            {"matchers": [{"name": "regency", "value": b_regency}], "comment": "x"},
            # Accepted: made inside the scope, it can mute nothing of B's.
            {"matchers": [{"name": "kind", "value": "level"}], "comment": "x"},
        ],
        ("POST", "/api/v1/users"): [
            {"username": "intruder-1", "role": "viewer", "regencies": [b_regency]},
            {"username": "intruder-2", "role": "admin"},
            {"username": "intruder-3", "role": "viewer", "province": "Jawa Tengah"},
        ],
        ("PUT", "/api/v1/policies/{regency}"): [
            {
                "recipients": [
                    {"name": "x", "channels": [{"name": "m", "url": "mailto://x@example.org"}]}
                ],
                "groups": [{"name": "x", "members": ["x"]}],
                "default_groups": ["x"],
            }
        ],
        ("POST", "/api/v1/api-keys"): [
            {"name": "intruder-1", "regencies": [b_regency]},
            {"name": "intruder-2"},
        ],
    }
    queries = [{}, {"regency": b_regency}, {"station": b_station.id}, {"active": "false"}]
    walked = []
    for method, path in sorted(_operations(world.harness)):
        if (method, path) in NOT_WALKED:
            continue
        url = path.format(**values)
        if method == "GET":
            walked += [(method, url, {"params": q}) for q in queries]
        elif (method, path) in bodies:
            walked += [(method, url, {"json": body}) for body in bodies[(method, path)]]
        else:
            walked.append((method, url, {}))
    # Signing out is a write on the caller alone: last, so the walk keeps its key.
    walked.sort(key=lambda r: r[1] == "/api/v1/logout")
    return walked


@pytest.fixture(params=sorted(CASES))
async def scoped(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[World, Case]:
    case = CASES[request.param]
    harness = build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)
    return await _seed(harness, case.scope), case


def _client(world: World, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.harness.app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_the_walk_covers_every_operation(tmp_path: Path) -> None:
    harness = build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)
    operations = _operations(harness)
    assert set(NOT_WALKED) <= operations
    assert len(operations - set(NOT_WALKED)) >= 18


async def test_no_answer_carries_b_data_and_no_write_on_b_is_accepted(
    scoped: tuple[World, Case],
) -> None:
    world, case = scoped
    forbidden = world.forbidden(case.inside)
    accepted_writes: list[str] = []
    async with _client(world, world.key) as client:
        for method, url, options in _requests(world, case.inside):
            response = await client.request(method, url, **options)
            where = f"{method} {url} {options}: {response.status_code}"
            assert response.status_code < 500, where
            text = response.text
            if response.status_code in {404, 422}:
                # "no station 'rb-lasem'": the caller's own words, as for a name that is not.
                text = re.sub(r"'[^']*'", "", text)
            leaked = sorted(t for t in forbidden if t in text)
            assert not leaked, f"{where} shows {leaked}: {response.text[:300]}"
            if method != "GET" and response.is_success:
                accepted_writes.append(f"{method} {url}")
    # The only writes accepted: silences (made inside the scope whatever they name), and
    # signing out; both checked below.
    assert sorted(set(accepted_writes)) == ["POST /api/v1/logout", "POST /api/v1/silences"]
    await _b_is_untouched(world, case)


async def _b_is_untouched(world: World, case: Case) -> None:
    ctx = world.harness.ctx
    for station in world.outside(case.inside):
        found = await ctx.incidents.get(world.incident_of[station.id])
        assert found is not None
        assert found.acknowledged is None
        assert found.assignee is None
        assert found.state is IncidentState.FIRING
    silences = await ctx.notify.silences(NOW_NS)
    alive = {s.id for s in silences}
    assert set(world.silence_of.values()) <= alive
    b = world.outside(case.inside)[0]
    b_labels = {"station": b.id, "regency": b.regency, "kind": "level"}
    made_by_a = [s for s in silences if s.created_by == "key:scoped-admin"]
    assert len(made_by_a) == 1
    for silence in made_by_a:
        assert silence.regencies is not None
        assert silence.regencies <= case.inside
        assert not silence.covers(b_labels, NOW_NS)
    users = {u.username for u in ctx.accounts.list_users()}
    keys = {k.name for k in ctx.accounts.list_keys()}
    for regency in {s.regency for s in world.outside(case.inside)}:
        assert f"user-{_slug(regency)}" in users
        assert f"key-{_slug(regency)}" in keys
    assert not {"intruder-1", "intruder-2", "intruder-3"} & (users | keys)
    assert await ctx.notify.regency_policies(b.regency) == []


async def test_the_scope_sees_its_own_data_and_the_deployment_sees_all(
    scoped: tuple[World, Case],
) -> None:
    world, case = scoped
    inside_stations = {s.id for s in world.stations if s.regency in case.inside}
    async with _client(world, world.key) as client:
        me = (await client.get("/api/v1/me")).json()
        stations = (await client.get("/api/v1/stations")).json()
        incidents = (await client.get("/api/v1/incidents")).json()
        health = (await client.get("/api/v1/health")).json()
        rejections = (await client.get("/api/v1/rejections")).json()
        silences = (await client.get("/api/v1/silences")).json()
        users = (await client.get("/api/v1/users")).json()
        feed = (await client.get("/api/v1/cap.atom")).text
        one = await client.get(f"/api/v1/stations/{sorted(inside_stations)[0]}")
    assert (me["regencies"], me["province"]) == (
        sorted(case.scope.regencies),
        case.scope.province,
    )
    assert {s["id"] for s in stations["data"]} == inside_stations
    assert stations["count"] == len(inside_stations)
    assert {i["subject"] for i in incidents["data"]} == inside_stations
    assert {h["station"] for h in health["data"]} == inside_stations
    assert {r["station"] for r in rejections["data"]} == inside_stations
    assert silences["count"] == len(case.inside)
    assert {u["username"] for u in users["data"]} == {f"user-{_slug(r)}" for r in case.inside}
    assert all(f"cap-{s}" in feed for s in inside_stations)
    assert one.status_code == 200
    # The deployment's admin sees what the scope does not.
    async with world.harness.client(Role.ADMIN) as client:
        everything = (await client.get("/api/v1/stations")).text
        me = (await client.get("/api/v1/me")).json()
    assert all(token in everything for s in world.outside(case.inside) for token in (s.id,))
    assert (me["regencies"], me["province"]) == ([], None)


def _about(kind: str, data: dict[str, Any]) -> str:
    return str(data["station"] if kind == "reading" else data["subject"])


async def test_the_live_stream_carries_only_the_scope(tmp_path: Path) -> None:
    """Readings and incident changes of B never reach a stream of A; A's do (the real route,
    under uvicorn)."""
    harness = build(
        f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path, live=True, live_poll_s=0.05
    )
    world = await _seed(harness, CASES["regency"].scope)
    storage = harness.ctx.storage
    assert isinstance(storage, MemoryStorage)
    jember = [s for s in world.stations if s.regency == "Jember"]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(harness.app, port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())

    def stream(key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )

    try:
        await eventually(lambda: server.started, 30, "uvicorn to start")
        async with (
            stream(world.key) as a_client,
            stream(harness.keys[Role.ADMIN]) as all_client,
            a_client.stream("GET", "/api/v1/events") as a_stream,
            all_client.stream("GET", "/api/v1/events") as all_stream,
        ):
            a_events, all_events = sse_events(a_stream), sse_events(all_stream)
            hub = harness.ctx.hub
            assert hub is not None
            await eventually(lambda: hub.clients == 2, 10, "two streams")
            # The poller's first poll is a baseline (no events): write after it.
            await eventually(lambda: hub.polls >= 1, 10, "the baseline poll")
            readings = [
                Reading(s.id, NOW_NS + NS, {next(iter(s.metrics)): 1.0}) for s in world.stations
            ]
            await storage.write(Batch(readings))
            for station in world.stations:
                await harness.ctx.incidents.acknowledge(
                    world.incident_of[station.id], by="ops", comment="seen", at_ns=NOW_NS
                )
            everything = {(k, s.id) for k in ("reading", "alert") for s in world.stations}
            seen_all: set[tuple[str, str]] = set()
            async with asyncio.timeout(20):
                while seen_all != everything:
                    kind, data = await anext(all_events)
                    seen_all.add((kind, _about(kind, data)))
            # Everything is queued for A too: a last A reading closes what A will see.
            sentinel = Reading(jember[0].id, NOW_NS + 2 * NS, {next(iter(jember[0].metrics)): 2.0})
            await storage.write(Batch([sentinel]))
            seen_a: list[tuple[str, str]] = []
            async with asyncio.timeout(20):
                while True:
                    kind, data = await anext(a_events)
                    seen_a.append((kind, _about(kind, data)))
                    if kind == "reading" and data["values"] == dict(sentinel.values):
                        break
    finally:
        server.should_exit = True
        await serving
    ids = {s.id for s in jember}
    assert {about for _, about in seen_a} == ids
    assert {(k, s) for k, s in seen_a} >= {(k, s) for k in ("reading", "alert") for s in ids}
