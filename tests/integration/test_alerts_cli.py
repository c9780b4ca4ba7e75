"""`siaga alerts list/show/ack` on a real incident database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from alerts.incidents.store import SqlIncidentStore
from alerts.model import AlertEvent, EventKind, IncidentState, Transition
from devices.levels import Level
from devices.stations import load_stations
from tests.conftest import STATIONS_FILE
from tests.integration.drivers import run_siaga, siaga_env
from tests.textcheck import ids_in

pytestmark = pytest.mark.integration

S = 1_000_000_000
T0 = 1_790_000_000 * S
REGISTRY = load_stations(STATIONS_FILE)


def siaga(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return run_siaga("alerts", *args, env=siaga_env(SIAGA_DATABASE__URL=url))


def transition(
    subject: str, at_s: int, severity: Level, state: IncidentState, before: IncidentState | None
) -> Transition:
    event = AlertEvent(
        at_ns=T0 + at_s * S,
        subject=subject,
        kind=EventKind.LEVEL,
        rule="level",
        firing=state != IncidentState.RESOLVED,
        severity=severity,
        value=float(100 + at_s),
        detail=f"{subject} {severity.name}",
    )
    return Transition(subject, "level", before, state, event)


@pytest.fixture
def url(sql_url: str) -> str:
    """The database (SQLite, then PostgreSQL) with Depok's incident firing, Katulampa's resolved."""

    async def seed() -> None:
        firing, resolved = IncidentState.FIRING, IncidentState.RESOLVED
        async with SqlIncidentStore(sql_url) as store:
            await store.commit(
                [transition("ciliwung-depok", 0, Level.WASPADA, firing, None)],
                {},
                {"ciliwung-depok": {"regency": "Kota Depok", "river": "Ciliwung"}},
            )
            await store.commit([transition("ciliwung-depok", 60, Level.SIAGA, firing, firing)], {})
            await store.commit([transition("ciliwung-katulampa", 10, Level.AWAS, firing, None)], {})
            await store.commit(
                [transition("ciliwung-katulampa", 90, Level.NORMAL, resolved, firing)], {}
            )

    asyncio.run(seed())
    return sql_url


def test_list_show_and_ack(url: str) -> None:
    listed = siaga("list", "--json", url=url)
    assert listed.returncode == 0, listed.stderr
    [depok] = json.loads(listed.stdout)
    assert (depok["station"], depok["state"], depok["severity"]) == (
        "ciliwung-depok",
        "firing",
        "SIAGA",
    )
    assert depok["labels"]["regency"] == "Kota Depok"
    everything = json.loads(siaga("list", "--all", "--json", url=url).stdout)
    assert [i["station"] for i in everything] == ["ciliwung-katulampa", "ciliwung-depok"]
    assert everything[0]["state"] == "resolved"

    table = siaga("list", url=url)
    # People read station names and Indonesian summaries; the command says what it read.
    assert "Pos Pantau Depok" in table.stdout
    assert "naik ke Siaga" in table.stdout
    assert "Bendung Katulampa" not in table.stdout
    assert ids_in(table.stdout, REGISTRY) == []
    assert "rose" not in table.stdout
    assert "database " in table.stderr
    assert "rose to Siaga" in siaga("list", "--lang", "en", url=url).stdout

    acked = siaga("ack", str(depok["id"]), "--by", "rina", "--comment", "tim ke lokasi", url=url)
    assert acked.returncode == 0, acked.stderr
    assert "rina" in acked.stdout
    shown = json.loads(siaga("show", str(depok["id"]), "--json", url=url).stdout)
    assert shown["acknowledged"]["by"] == "rina"
    assert shown["acknowledged"]["comment"] == "tim ke lokasi"
    assert [
        (t["previous_state"], t["state"], t["event"]["level"]) for t in shown["transitions"]
    ] == [
        (None, "firing", "WASPADA"),
        ("firing", "firing", "SIAGA"),
    ]
    assert shown["transitions"][1]["event"]["value"] == 160.0
    text = siaga("show", str(depok["id"]), url=url)
    assert text.returncode == 0, text.stderr
    assert "by rina" in text.stdout
    assert "summary: Pos Pantau Depok naik ke Siaga" in text.stdout
    assert "firing → firing" in text.stdout

    missing = siaga("ack", "999", "--by", "rina", url=url)
    assert missing.returncode == 2
    assert "no incident 999" in missing.stderr
    assert siaga("show", "999", url=url).returncode == 2
