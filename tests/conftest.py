"""Shared fixtures: real servers on free ports in temp dirs, and a guard against hidden errors."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.servers import InfluxServer, MosquittoServer, PostgresServer

REPO_ROOT = Path(__file__).resolve().parent.parent
STATIONS_FILE = REPO_ROOT / "config" / "stations.yaml"


class _ExceptionRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_logged_exceptions(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail any test in which code caught an exception and logged it: nothing hides.

    A test that provokes one on purpose says so with ``@pytest.mark.logged_exceptions``.
    """
    recorder = _ExceptionRecorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    try:
        yield
    finally:
        root.removeHandler(recorder)
    if recorder.records and request.node.get_closest_marker("logged_exceptions") is None:
        first = recorder.records[0]
        pytest.fail(f"an exception was logged: {first.getMessage()}", pytrace=False)


def integration_only(request: pytest.FixtureRequest, server: str) -> None:
    """Fail a test that starts a real server without the mark ``-m "not integration"`` skips."""
    if request.node.get_closest_marker("integration") is None:
        pytest.fail(f"{request.node.nodeid} starts {server} but is not marked integration")


def unique_name(request: pytest.FixtureRequest) -> str:
    """A name unique to this test, safe as a database name and topic level."""
    return re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[-50:] + f"_{id(request) % 10_000}"


@pytest.fixture(scope="session")
def broker_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """One broker shared by tests that do not restart it."""
    with MosquittoServer(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


@pytest.fixture(scope="session")
def influx_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """One InfluxDB shared by tests that do not restart it; each test uses its own database."""
    with InfluxServer(tmp_path_factory.mktemp("influxdb")) as server:
        yield server


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MosquittoServer]:
    """A broker of this test's own, which it may stop and restart."""
    integration_only(request, "mosquitto")
    with MosquittoServer(tmp_path / "mosquitto") as server:
        yield server


@pytest.fixture
def influx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InfluxServer]:
    """An InfluxDB of this test's own, which it may stop and restart."""
    integration_only(request, "influxd")
    with InfluxServer(tmp_path / "influxdb") as server:
        yield server


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """A database name unique to this test."""
    return "t_" + unique_name(request)


@pytest.fixture(scope="session")
def postgres_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One PostgreSQL cluster shared by tests; each test creates its own database."""
    with PostgresServer(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh PostgreSQL database of this test's own."""
    integration_only(request, "PostgreSQL")  # before the cluster starts
    server: PostgresServer = request.getfixturevalue("postgres_session")
    return server.create_database(("t_" + unique_name(request)).lower())
