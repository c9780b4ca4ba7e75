"""Schemathesis against the OpenAPI document: no server error, no response that breaks it.

Runs anonymously (every protected operation must answer its documented 401), as a viewer
(403 where documented) and as an admin (every operation's real answers). Examples per operation
are bounded so the tier stays fast.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import ignored_auth, positive_data_acceptance

from dashboards.api.accounts import Role
from devices import Reading
from ingest.storage.memory import MemoryStorage
from tests.apitools import NOW_NS, NS, ApiHarness, build, incident


def _test_client(harness: ApiHarness) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # StarletteDeprecationWarning: httpx vs httpx2
        from starlette.testclient import TestClient  # noqa: PLC0415

    return TestClient(harness.app, base_url=BASE, raise_server_exceptions=False)


EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
BASE = "http://testserver"
EXCLUDED = [
    # Probes through Schemathesis's own transport; test_api_roles.py checks authentication
    # operation by operation instead.
    ignored_auth,
    # Rules the schema cannot state (a silence ends after it starts, a station reports the
    # metric asked for) rightly answer 422 to schema-valid requests.
    positive_data_acceptance,
]


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


def _operations(harness: ApiHarness) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", harness.app)
    found = [result.ok() for result in schema.get_all_operations()]
    # The event stream never ends by design; tests/integration/test_api_live.py covers it.
    return [op for op in found if op.path != "/api/v1/events"]


def _send(client: Any, kwargs: dict[str, Any]) -> Any:
    """Send a case's request (requests-style keyword arguments) through the client."""
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif isinstance(kwargs.get("data"), bytes | str):
        body["content"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        body["data"] = kwargs["data"]
    client.cookies.clear()
    return client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=kwargs.get("headers"),
        **body,
    )


@pytest.mark.parametrize(
    "role", [None, Role.VIEWER, Role.ADMIN], ids=["anonymous", "viewer", "admin"]
)
def test_every_operation_answers_as_documented(harness: ApiHarness, role: Role | None) -> None:
    """Schemathesis generates the requests and judges the answers; Starlette's client sends
    them in process (Schemathesis's own transport fails with the installed urllib3)."""
    auth = {} if role is None else {"Authorization": f"Bearer {harness.keys[role]}"}
    operations = _operations(harness)
    assert len(operations) > 20
    client = _test_client(harness)
    for operation in operations:

        @given(case=operation.as_strategy())
        @EXAMPLES
        def check(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url=BASE)
            headers = kwargs.setdefault("headers", {})
            if role is not None:
                headers.pop("X-API-Key", None)
                headers.update(auth)
            response = _send(client, kwargs)
            case.validate_response(response, headers=headers, excluded_checks=EXCLUDED)

        check()
