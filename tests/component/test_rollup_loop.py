"""The worker's background rollup loop: a failing pass is counted and tried again, never fatal."""

from __future__ import annotations

import httpx
import pytest

from ingest.metrics import IngestMetrics
from ingest.runtime import refresh_rollups
from ingest.settings import InfluxSettings
from ingest.storage.influx import InfluxStorage


class _StopError(Exception):
    pass


async def test_a_failing_pass_is_counted_and_the_next_one_runs() -> None:
    answers = [httpx.Response(503, text="busy"), httpx.Response(200, json={"results": [{}]})]
    statements: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        statements.append(request.url.params["q"])
        return answers.pop(0) if answers else httpx.Response(200, json={"results": [{}]})

    storage = InfluxStorage(
        InfluxSettings(url="http://influx.invalid"),
        lambda station: {"station": station},
        httpx.MockTransport(answer),
    )
    storage.rollups_ready = True
    metrics = IngestMetrics()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            raise _StopError

    with pytest.raises(_StopError):
        await refresh_rollups(storage, 300.0, metrics, sleep=sleep)
    await storage.aclose()
    assert waits == [300.0, 300.0]
    assert len(statements) == 2
    assert all("rollup_dirty" in q for q in statements)
    sample = metrics.registry.get_sample_value
    assert sample("siaga_rollup_pass_failures_total") == 1.0
    assert sample("siaga_rollup_passes_total") == 1.0  # the other pass, which found nothing
    assert sample("siaga_rollup_hours_recomputed_total") == 0.0
