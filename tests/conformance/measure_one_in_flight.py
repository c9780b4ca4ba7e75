"""On demand: how fast the worker drains a broker that keeps one QoS 1 message in flight.

    .venv/bin/python -m tests.conformance.measure_one_in_flight [messages]

Prints messages/s with the idle flush off (flush by size or age only) and on, against the
scripted broker (which sends the next message only after the PUBACK of the last, as ejabberd
does). Not a test: figures depend on the machine; see docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from ingest.settings import BatchSettings
from tests.conformance.scripted_broker import Script, ScriptedBroker
from tests.conformance.worker import run_worker
from tests.helpers import reading_payload


async def measure(count: int, idle_flush_s: float | None) -> float:
    """Messages per second from first delivery to the last acknowledgement."""
    ts_ms = time.time_ns() // 1_000_000 - 60_000
    messages = [
        ("siaga/tb-menggala/telemetry", reading_payload(ts_ms + i, seq=i, water_level_cm=1.0))
        for i in range(count)
    ]
    flush_interval_s = BatchSettings().flush_interval_s
    with tempfile.TemporaryDirectory() as directory:
        async with ScriptedBroker(Script(messages=messages, max_in_flight=1)) as broker:
            started = time.monotonic()
            async with run_worker(
                Path(directory),
                broker.port,
                flush_interval_s=flush_interval_s,
                idle_flush_s=idle_flush_s,
            ):
                while not broker.connections or len(broker.connections[0].acked) < count:  # noqa: ASYNC110 - polling a counter
                    await asyncio.sleep(0.005)
                elapsed = time.monotonic() - started
    return count / elapsed


async def main(count: int) -> None:
    """Print both figures."""
    default_idle_s = BatchSettings().idle_flush_s
    for label, idle_flush_s in (
        ("size/age only", None),
        (f"idle {default_idle_s} s", default_idle_s),
    ):
        rate = await measure(count, idle_flush_s)
        print(f"{label:>16}: {rate:8.0f} messages/s ({count} messages, one in flight)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
