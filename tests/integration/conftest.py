"""Fixtures for the integration tier."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops.servers import InfluxServer, MosquittoServer
from tests.conftest import unique_name
from tests.integration.drivers import WorkerProcess

NewWorker = Callable[..., WorkerProcess]


@pytest.fixture
def new_worker(
    request: pytest.FixtureRequest,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> NewWorker:
    """Makes `siaga ingest` drivers on the shared servers, with this test's own topic prefix,
    group and database: ``new_worker(directory, extra_env=None, tag="")`` (not started; a
    second worker of the same test needs its own ``tag``, which its client id carries)."""
    name = unique_name(request)

    def make(
        directory: Path, extra_env: dict[str, str] | None = None, tag: str = ""
    ) -> WorkerProcess:
        return WorkerProcess(
            directory,
            broker_session.url,
            influx_session.url,
            database,
            client_id=f"w{tag}-{name}",
            topic_prefix=f"p{name}",
            shared_group=f"g{name}",
            extra_env=dict(extra_env or {}),
        )

    return make


@pytest.fixture
def worker(tmp_path: Path, new_worker: NewWorker) -> Iterator[WorkerProcess]:
    """`siaga ingest` on the shared servers, with its own topic prefix, group and database."""
    with new_worker(tmp_path / "worker") as process:
        yield process


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: an SQLite file, then the shared PostgreSQL's own database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'incidents.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
