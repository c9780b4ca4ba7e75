"""The API's behaviour on in-memory stores and a real SQLite database: sessions and CSRF,
rate-limited login, signed acknowledgement links, station summaries, readings, filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.model import EventKind, IncidentState
from alerts.notify.acklink import signed_ack_links
from dashboards.api.accounts import Role
from dashboards.api.schemas import StationList
from devices import Reading, Reason, Rejection
from devices.levels import Level
from ingest.batch import Batch, StoredRejection
from ingest.storage.memory import MemoryStorage
from tests.apitools import (
    NOW_NS,
    NS,
    PASSWORD,
    SECRET_KEY,
    ApiHarness,
    build,
    incident,
    session,
)


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def harness(tmp_path: Path, storage: MemoryStorage) -> ApiHarness:
    return build(f"sqlite:///{tmp_path}/siaga.db", storage, tmp_path)


async def _readings(storage: MemoryStorage, station: str, points: list[tuple[int, float]]) -> None:
    batch = Batch()
    for ts_ns, value in points:
        batch.readings.append(Reading(station, ts_ns, {"water_level_cm": value, "battery_v": 3.9}))
    await storage.write(batch)


# -- sessions, CSRF, login limits ------------------------------------------------------------


async def test_a_session_cookie_is_httponly_and_unsafe_requests_need_the_csrf_token(
    harness: ApiHarness,
) -> None:
    harness.incidents.put(incident(7))
    async with session(harness, "operator") as (client, csrf):
        cookie = client.cookies.get("siaga_session")
        assert cookie
        assert (await client.get("/api/v1/me")).json()["role"] == "operator"
        refused = await client.post("/api/v1/incidents/7/ack", json={"comment": "x"})
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]
        accepted = await client.post(
            "/api/v1/incidents/7/ack",
            json={"comment": "on my way"},
            headers={"X-CSRF-Token": csrf},
        )
        assert accepted.status_code == 200
        assert accepted.json()["acknowledged"]["by"] == "operator"
        assert accepted.json()["acknowledged"]["comment"] == "on my way"
        logout = await client.post("/api/v1/logout", headers={"X-CSRF-Token": csrf})
        assert logout.status_code == 204
        client.cookies.set("siaga_session", cookie)
        assert (await client.get("/api/v1/me")).status_code == 401


async def test_the_set_cookie_header_says_httponly_and_samesite(harness: ApiHarness) -> None:
    async with harness.client() as client:
        response = await client.post(
            "/api/v1/login", data={"username": "viewer", "password": PASSWORD}
        )
    assert response.status_code == 200
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header
    assert "samesite=lax" in header


async def test_login_is_rate_limited_per_username(harness: ApiHarness) -> None:
    async with harness.client() as client:
        for _ in range(5):
            wrong = await client.post(
                "/api/v1/login", json={"username": "admin", "password": "wrong password"}
            )
            assert wrong.status_code == 401
        limited = await client.post(
            "/api/v1/login", json={"username": "admin", "password": PASSWORD}
        )
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
        harness.clock.now_ns += 301 * NS
        assert (
            await client.post("/api/v1/login", json={"username": "admin", "password": PASSWORD})
        ).status_code == 200


async def test_a_login_without_password_is_422_naming_it(harness: ApiHarness) -> None:
    async with harness.client() as client:
        response = await client.post("/api/v1/login", json={"username": "admin"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]


async def test_an_admin_adds_a_user_with_a_generated_password_shown_once(
    harness: ApiHarness,
) -> None:
    async with harness.client(Role.ADMIN) as admin:
        created = await admin.post("/api/v1/users", json={"username": "siti", "role": "operator"})
        assert created.status_code == 201
        password = created.json()["password"]
        assert len(password) >= 16
        again = await admin.post("/api/v1/users", json={"username": "siti"})
        assert again.status_code == 409
        listed = (await admin.get("/api/v1/users")).json()
        assert "password" not in listed["data"][0]
    async with harness.client() as client:
        login = await client.post("/api/v1/login", json={"username": "siti", "password": password})
        assert login.json()["role"] == "operator"


# -- acknowledgement links --------------------------------------------------------------------


async def test_expired_or_forged_links_do_nothing(harness: ApiHarness) -> None:
    harness.incidents.put(incident(4))
    now_s = NOW_NS / NS
    expired = signed_ack_links("http://test", SECRET_KEY, valid_s=3600, clock=lambda: now_s - 3601)
    forged = signed_ack_links("http://test", b"another key", clock=lambda: now_s)
    async with harness.client() as client:
        for links, status in ((expired, 410), (forged, 404)):
            path = links(4).removeprefix("http://test")
            assert (await client.get(path)).status_code == status
            action = path.replace("/ack?", "/ack-link?")
            assert (await client.post(action, data={"by": "budi"})).status_code == status
        # Another incident's signature: forged for this one.
        other = signed_ack_links("http://test", SECRET_KEY, clock=lambda: now_s)(5)
        spliced = other.removeprefix("http://test").replace("/incidents/5/", "/incidents/4/")
        assert (await client.get(spliced)).status_code == 404
    found = await harness.incidents.get(4)
    assert found is not None
    assert found.acknowledged is None


# -- stations and readings --------------------------------------------------------------------


async def test_a_station_shows_its_newest_reading_by_time_level_label_and_trend(
    harness: ApiHarness, storage: MemoryStorage
) -> None:
    # Menggala (bnpb scheme; since 2025-06 waspada 230, siaga 330): rising 20 cm in 30 min.
    await _readings(
        storage,
        "tb-menggala",
        [
            (NOW_NS - 1800 * NS, 320.0),
            (NOW_NS - 120 * NS, 340.0),
        ],
    )
    # A late, older reading arrives last: it must not become "latest".
    await _readings(storage, "tb-menggala", [(NOW_NS - 900 * NS, 330.0)])
    async with harness.client(Role.VIEWER) as client:
        station = (await client.get("/api/v1/stations/tb-menggala")).json()
    assert station["value_cm"] == 340.0
    assert station["level"] == "SIAGA"
    assert station["level_label"] == "Siaga"
    assert station["trend_cm_h"] == pytest.approx(20 / (1680 / 3600), abs=0.01)
    assert station["stale_s"] == 120
    assert station["stale"] is False
    assert station["thresholds"]["siaga_cm"] == 330
    assert station["upstream"] == [{"station": "tb-banjar-agung", "travel_min": 480.0}]


async def test_a_jakarta_gate_speaks_its_own_scheme(
    harness: ApiHarness, storage: MemoryStorage
) -> None:
    async with harness.client(Role.VIEWER) as client:
        stations = (await client.get("/api/v1/stations")).json()["data"]
    gates = [
        s for s in stations if s["thresholds"] and s["thresholds"]["scheme"] == "jakarta-gates"
    ]
    assert gates, "the seed registry has Jakarta gates"
    gate = gates[0]
    await _readings(storage, gate["id"], [(NOW_NS - 60 * NS, gate["thresholds"]["awas_cm"] + 1)])
    async with harness.client(Role.VIEWER) as client:
        found = (await client.get(f"/api/v1/stations/{gate['id']}")).json()
    assert found["level"] == "AWAS"
    assert found["level_label"] == "Siaga 1"


async def test_readings_in_windows_and_raw(harness: ApiHarness, storage: MemoryStorage) -> None:
    start = NOW_NS - NOW_NS % (3600 * NS) - 2 * 3600 * NS
    await _readings(storage, "tb-menggala", [(start + i * 600 * NS, float(i)) for i in range(12)])
    query = {
        "start": datetime.fromtimestamp(start / NS, UTC).isoformat(),
        "end": datetime.fromtimestamp((start + 7200 * NS) / NS, UTC).isoformat(),
    }
    async with harness.client(Role.VIEWER) as client:
        hourly = (
            await client.get(
                "/api/v1/stations/tb-menggala/readings", params={**query, "window": "1h"}
            )
        ).json()
        raw = (await client.get("/api/v1/stations/tb-menggala/readings", params=query)).json()
    assert [(w["mean"], w["min"], w["max"], w["count"]) for w in hourly["data"]] == [
        (2.5, 0, 5, 6),
        (8.5, 6, 11, 6),
    ]
    assert raw["count"] == 12
    assert raw["data"][3]["mean"] == 3.0


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"metric": "wind_speed"}, "metric"),
        ({"metric": "Bad Name"}, "metric"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"window": "5m"}, "window"),
        ({"window": "1m", "start": "2000-01-01T00:00:00Z"}, "window"),
    ],
)
async def test_bad_parameters_are_422_naming_the_parameter(
    harness: ApiHarness, query: dict[str, str], parameter: str
) -> None:
    async with harness.client(Role.VIEWER) as client:
        response = await client.get("/api/v1/stations/tb-menggala/readings", params=query)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", parameter]


async def test_an_unknown_station_or_incident_is_404(harness: ApiHarness) -> None:
    async with harness.client(Role.OPERATOR) as client:
        assert (await client.get("/api/v1/stations/nowhere")).status_code == 404
        assert (await client.get("/api/v1/incidents/99")).status_code == 404
        assert (await client.post("/api/v1/incidents/99/ack", json={})).status_code == 404


# -- incidents, silences, rejections ---------------------------------------------------------


async def test_incidents_filter_by_activity_regency_kind_and_level(harness: ApiHarness) -> None:
    harness.incidents.put(incident(1, severity=Level.AWAS))
    harness.incidents.put(incident(2, state=IncidentState.RESOLVED))
    harness.incidents.put(incident(3, "jr-bedadung-kota", regency="Jember"))
    async with harness.client(Role.VIEWER) as client:

        async def ids(**params: str) -> list[int]:
            response = await client.get("/api/v1/incidents", params=params)
            assert response.status_code == 200, response.text
            return sorted(i["id"] for i in response.json()["data"])

        assert await ids() == [1, 2, 3]
        assert await ids(active="true") == [1, 3]
        assert await ids(regency="Jember") == [3]
        assert await ids(level="AWAS") == [1]
        assert await ids(kind=EventKind.LEVEL.value, station="tb-menggala") == [1, 2]
        detail = (await client.get("/api/v1/incidents/1")).json()
        assert detail["transitions"][0]["state"] == "firing"
        assert detail["level_label"] == "Awas"


async def test_an_operator_acknowledges_a_station_or_a_regency_at_once(
    harness: ApiHarness,
) -> None:
    harness.incidents.put(incident(1))
    harness.incidents.put(incident(2, severity=Level.AWAS))
    harness.incidents.put(incident(3, "tb-banjar-agung"))
    harness.incidents.put(incident(4, state=IncidentState.RESOLVED))
    harness.incidents.put(incident(5, "jr-bedadung-kota", regency="Jember"))
    async with harness.client(Role.VIEWER) as viewer:
        refused = await viewer.post("/api/v1/incidents/acknowledge", json={"station": "x"})
        assert refused.status_code == 403
    async with harness.client(Role.OPERATOR) as client:
        vague = await client.post("/api/v1/incidents/acknowledge", json={"comment": "all"})
        assert vague.status_code == 422
        assert vague.json()["detail"][0]["loc"] == ["body", "station"]

        async def acknowledge(**body: str) -> list[int]:
            response = await client.post("/api/v1/incidents/acknowledge", json=body)
            assert response.status_code == 200, response.text
            return sorted(i["id"] for i in response.json()["data"])

        assert await acknowledge(station="tb-menggala", comment="tim menuju") == [1, 2]
        assert await acknowledge(station="tb-menggala") == []  # done already
        assert await acknowledge(regency="Tulang Bawang") == [3]
        listed = (await client.get("/api/v1/incidents")).json()["data"]
    acked = {i["id"]: i["acknowledged"] for i in listed}
    assert acked[1] == {"by": "key:operator-key", "at": acked[1]["at"], "comment": "tim menuju"}
    assert acked[3] is not None
    assert acked[4] is None  # resolved: not active
    assert acked[5] is None  # another regency


async def test_an_operator_silences_and_assigns(harness: ApiHarness) -> None:
    harness.incidents.put(incident(5))
    async with harness.client(Role.OPERATOR) as client:
        created = await client.post(
            "/api/v1/silences",
            json={
                "matchers": [{"name": "station", "value": "tb-menggala"}],
                "duration_min": 30,
                "comment": "repair",
            },
        )
        assert created.status_code == 201
        assert created.json()["created_by"] == "key:operator-key"
        listed = (await client.get("/api/v1/silences")).json()
        assert listed["count"] == 1
        assigned = await client.post("/api/v1/incidents/5/assign", json={"assignee": "budi"})
        assert assigned.json()["assignee"] == "budi"
        backwards = await client.post(
            "/api/v1/silences",
            json={
                "matchers": [{"name": "a", "value": "b"}],
                "comment": "c",
                "starts": "2026-01-02T00:00:00Z",
                "ends": "2026-01-01T00:00:00Z",
            },
        )
        assert backwards.status_code == 422
        assert backwards.json()["detail"][0]["loc"] == ["body", "ends"]
        everything = await client.post(
            "/api/v1/silences",
            json={"matchers": [{"name": "station", "value": ".*", "op": "=~"}], "comment": "c"},
        )
        assert everything.status_code == 422
        assert everything.json()["detail"][0]["loc"] == ["body", "matchers"]
        silence_id = created.json()["id"]
        harness.clock.now_ns += NS
        assert (await client.delete(f"/api/v1/silences/{silence_id}")).status_code == 204
        assert (await client.get("/api/v1/silences")).json()["count"] == 0
        assert (await client.delete("/api/v1/silences/999")).status_code == 404


async def test_rejections_filter_by_reason_and_station(
    harness: ApiHarness, storage: MemoryStorage
) -> None:
    def rejected(reason: Reason, station: str | None, ago_s: int) -> StoredRejection:
        return StoredRejection(Rejection(reason, "bad", station), "t", "{}", NOW_NS - ago_s * NS)

    await storage.write(
        Batch(
            rejections=[
                rejected(Reason.OUT_OF_RANGE, "tb-menggala", 10),
                rejected(Reason.INVALID_JSON, None, 20),
                rejected(Reason.OUT_OF_RANGE, "jr-bedadung-kota", 30),
                rejected(Reason.OUT_OF_RANGE, "tb-menggala", 2 * 86400),
            ]
        )
    )
    async with harness.client(Role.VIEWER) as client:
        everything = (await client.get("/api/v1/rejections")).json()
        assert everything["count"] == 3
        by_reason = await client.get(
            "/api/v1/rejections", params={"reason": "out_of_range", "station": "tb-menggala"}
        )
        assert [r["station"] for r in by_reason.json()["data"]] == ["tb-menggala"]
        bad = await client.get("/api/v1/rejections", params={"reason": "nonsense"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["query", "reason"]


async def test_the_station_list_is_a_shared_snapshot_refreshed_in_the_background(
    harness: ApiHarness, storage: MemoryStorage
) -> None:
    await _readings(storage, "tb-menggala", [(NOW_NS - 60 * NS, 300.0)])

    async def menggala(client: object) -> float:
        response = await client.get("/api/v1/stations")  # type: ignore[attr-defined]
        assert response.status_code == 200
        (found,) = [s for s in response.json()["data"] if s["id"] == "tb-menggala"]
        return float(found["value_cm"])

    async with harness.client(Role.VIEWER) as client:
        assert await menggala(client) == 300.0
        await _readings(storage, "tb-menggala", [(NOW_NS - 30 * NS, 310.0)])
        assert await menggala(client) == 300.0  # within overview_max_age_s: shared
        harness.clock.now_ns += 2 * NS
        assert await menggala(client) == 300.0  # served at once, refreshed behind
        refreshing = harness.ctx._refreshing
        assert refreshing is not None
        await refreshing
        assert await menggala(client) == 310.0


async def test_the_station_list_is_never_older_than_its_bound_and_ages_as_of_the_answer(
    harness: ApiHarness, storage: MemoryStorage
) -> None:
    await _readings(storage, "tb-menggala", [(NOW_NS - 60 * NS, 300.0)])

    async def menggala(client: object) -> tuple[dict[str, object], dict[str, object]]:
        response = await client.get("/api/v1/stations")  # type: ignore[attr-defined]
        assert response.status_code == 200
        StationList.model_validate_json(response.content)  # the documented shape, whole
        body = response.json()
        (found,) = [s for s in body["data"] if s["id"] == "tb-menggala"]
        assert found["stale"] is (found["stale_s"] > 900 * 2)
        return body, found

    async with harness.client(Role.VIEWER) as client:
        body, found = await menggala(client)
        assert (body["age_s"], found["stale_s"]) == (0, 60)
        await _readings(storage, "tb-menggala", [(NOW_NS + 2 * NS, 320.0)])
        harness.clock.now_ns += 3 * NS
        body, found = await menggala(client)
        # The shared snapshot, three seconds old, and the reading's age as of now.
        assert (body["age_s"], found["value_cm"], found["stale_s"]) == (3, 300.0, 63)
        harness.clock.now_ns += 10 * NS
        body, found = await menggala(client)
        # Older than overview_max_stale_s: never served, the request waits for a fresh one.
        assert (body["age_s"], found["value_cm"], found["stale_s"]) == (0, 320.0, 11)
        assert body["as_of"] == "2026-05-28T20:26:53Z"


async def test_a_back_dated_station_has_the_trend_of_its_newest_readings(
    harness: ApiHarness, storage: MemoryStorage
) -> None:
    # A replay two days old: rising 3 cm/h over its last hour, nothing in the clock's last hour.
    newest_ns = NOW_NS - 2 * 86400 * NS
    await _readings(
        storage, "tb-menggala", [(newest_ns - k * 900 * NS, 300.0 - 0.75 * k) for k in range(8)]
    )
    async with harness.client(Role.VIEWER) as client:
        (listed,) = [
            s
            for s in (await client.get("/api/v1/stations")).json()["data"]
            if s["id"] == "tb-menggala"
        ]
        station = (await client.get("/api/v1/stations/tb-menggala")).json()
    assert listed["trend_cm_h"] == station["trend_cm_h"] == pytest.approx(3.0)
    assert station["stale"] is True

    # Asked once per newest reading: the next answers reuse it.
    asked: list[int] = []
    spans = storage.spans

    async def counted(metric: str, since_ns: int, ids: object = None) -> object:
        asked.append(since_ns)
        return await spans(metric, since_ns, ids)  # type: ignore[arg-type]

    storage.spans = counted  # type: ignore[method-assign]
    async with harness.client(Role.VIEWER) as client:
        again = (await client.get("/api/v1/stations/tb-menggala")).json()
    assert again["trend_cm_h"] == pytest.approx(3.0)
    assert asked == [NOW_NS - 3600 * NS]  # the clock's window only


async def test_a_notification_link_asks_who_and_works_once(harness: ApiHarness) -> None:
    harness.incidents.put(incident(8))
    links = signed_ack_links("http://test", SECRET_KEY, clock=lambda: harness.clock.now_ns / NS)
    path = links(8).removeprefix("http://test")
    async with harness.client() as client:
        page = await client.get(path)
        assert page.status_code == 200
        assert 'name="by"' in page.text
        action = path.replace("/ack?", "/ack-link?")
        used = await client.post(action, data={"by": "Budi (BPBD)"})
        assert used.status_code == 200, used.text
        assert (await client.post(action, data={"by": "Someone"})).status_code == 409
        forged = action[:-4] + "0000"
        assert (await client.post(forged, data={"by": "x"})).status_code == 404
        harness.clock.now_ns += 49 * 3600 * NS
        assert (await client.get(links(8).removeprefix("http://test"))).status_code == 200
        assert (await client.get(path)).status_code == 410
    found = await harness.incidents.get(8)
    assert found is not None
    assert found.acknowledged is not None
    assert found.acknowledged.by == "Budi (BPBD)"
    # Once in the audit log: the second, refused use is not an acknowledgement.
    (audited,) = harness.ctx.audit_log().read(regencies=None)
    assert (audited.actor, audited.action, audited.target, audited.regency) == (
        "link:Budi (BPBD)",
        "incident.acknowledge",
        "8",
        "Tulang Bawang",
    )
