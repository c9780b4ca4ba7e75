"""Schemathesis over the API's whole OpenAPI document, in process.

Schemathesis generates each operation's requests and judges the answers (no server error, the
documented status codes, content types and shapes); Starlette's test client sends them to the
ASGI app directly. No HTTP client library is involved: Schemathesis's own transport is built on
requests, and grafana-client's niquests installs urllib3-future in place of urllib3, whose pool
manager requests' transport cannot read (``'TrafficPolice' object has no attribute 'keys'``), so
the ``schemathesis run`` command fails every case in this environment whichever order pip
installed them in. In process, the fuzzer depends on neither.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import ignored_auth, positive_data_acceptance

from dashboards.api.accounts import Role
from tests.apitools import ApiHarness

BASE = "http://testserver"
# Characters that end or escape a quoted value in some query language downstream (InfluxQL,
# SQL, a shell, a log line). Schemathesis draws them too rarely to rely on: each case has one
# half of its cases with every free-text query value replaced by one of these.
NASTY = (
    "a\nb",
    "a\r\nb",
    "a\rb",
    "a\x00b",
    "x' OR 'a'='a",
    'x" OR "a"="a',
    "back\\slash",
    "%00",
    "/./",
)
EXCLUDED = [
    # Probes through Schemathesis's own transport; test_api_roles.py checks authentication
    # operation by operation instead.
    ignored_auth,
    # Rules the schema cannot state (a silence ends after it starts, a station reports the
    # metric asked for) rightly answer 422 to schema-valid requests.
    positive_data_acceptance,
]


def examples(count: int) -> settings:
    """Hypothesis settings: ``count`` examples per operation, reproducible, no database."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )


def _test_client(harness: ApiHarness) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # StarletteDeprecationWarning: httpx vs httpx2
        from starlette.testclient import TestClient  # noqa: PLC0415

    return TestClient(harness.app, base_url=BASE, raise_server_exceptions=False)


def operations(harness: ApiHarness) -> list[Any]:
    """Every operation of the document but the endless event stream (test_api_live.py)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", harness.app)
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if op.path != "/api/v1/events"]


def _free_text_query(operation: Any) -> list[str]:
    """The operation's query parameters that take any text (no enum, format or pattern)."""
    found = []
    for parameter in operation.query:
        text = json.dumps(parameter.definition)
        if '"string"' in text and not any(k in text for k in ('"enum"', '"format"', '"pattern"')):
            found.append(parameter.name)
    return found


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


def fuzz(
    harness: ApiHarness,
    role: Role | None,
    per_operation: settings,
    *,
    close: Callable[[], Awaitable[None]] | None = None,
) -> int:
    """Run every operation's generated cases as ``role``; returns the operations tested.

    ``close`` runs on the app's event loop at the end (a storage client opened there).

    Raises:
        AssertionError: (Hypothesis's report) a case got a server error or an undocumented
            answer; the failing request is in the message.
    """
    auth = {} if role is None else {"Authorization": f"Bearer {harness.keys[role]}"}
    found = operations(harness)
    # One event loop for every request (a client of the storage belongs to the loop it began in).
    with _test_client(harness) as client:
        try:
            for operation in found:
                _fuzz_one(client, operation, auth, role is not None, per_operation)
        finally:
            if close is not None:
                client.portal.call(close)
    return len(found)


def _fuzz_one(
    client: Any, operation: Any, auth: dict[str, str], authenticated: bool, per_operation: settings
) -> None:
    texts = _free_text_query(operation)

    @given(case=operation.as_strategy(), nasty=st.sampled_from(NASTY), roll=st.integers(0, 1))
    @per_operation
    def check(case: Any, nasty: str, roll: int) -> None:
        if texts and roll == 0:
            case.query = {**(case.query or {}), **dict.fromkeys(texts, nasty)}
        kwargs = case.as_transport_kwargs(base_url=BASE)
        headers = kwargs.setdefault("headers", {})
        if authenticated:
            headers.pop("X-API-Key", None)
            headers.update(auth)
        response = _send(client, kwargs)
        case.validate_response(response, headers=headers, excluded_checks=EXCLUDED)

    check()
