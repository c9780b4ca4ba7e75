"""Schemathesis against the OpenAPI document: no server error, no response that breaks it.

Runs anonymously (every protected operation must answer its documented 401), as a viewer
(403 where documented) and as an admin (every operation's real answers). Examples per operation
are bounded so the tier stays fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboards.api.accounts import Role
from devices import Reading
from ingest.storage.memory import MemoryStorage
from tests.apifuzz import examples, fuzz
from tests.apitools import NOW_NS, NS, ApiHarness, build, incident


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> ApiHarness:
    directory: Path = tmp_path_factory.mktemp("schema")
    storage = MemoryStorage()
    api = build(f"sqlite:///{directory}/siaga.db", storage, directory)
    api.incidents.put(incident(1))
    for i in range(30):
        reading = Reading("tb-menggala", NOW_NS - i * 60 * NS, {"water_level_cm": 300.0 + i})
        storage.points[(reading.station_id, reading.ts_ns)] = dict(reading.values)
    return api


@pytest.mark.parametrize(
    "role", [None, Role.VIEWER, Role.ADMIN], ids=["anonymous", "viewer", "admin"]
)
def test_every_operation_answers_as_documented(harness: ApiHarness, role: Role | None) -> None:
    """Schemathesis generates the requests and judges the answers, in process (tests/apifuzz.py)."""
    assert fuzz(harness, role, examples(20)) > 20
