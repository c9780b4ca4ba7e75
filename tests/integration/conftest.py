"""Fixtures for the integration tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.servers import InfluxServer, MosquittoServer
from tests.conftest import unique_name
from tests.integration.drivers import WorkerProcess


@pytest.fixture
def worker(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> Iterator[WorkerProcess]:
    """`siaga ingest` on the shared servers, with its own topic prefix, group and database."""
    name = unique_name(request)
    with WorkerProcess(
        tmp_path / "worker",
        broker_session.url,
        influx_session.url,
        database,
        client_id=f"w-{name}",
        topic_prefix=f"p{name}",
        shared_group=f"g{name}",
    ) as process:
        yield process
