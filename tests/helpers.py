"""Helpers shared by the test tiers: waiting on conditions, payloads, real-server clients."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import strategies as st

from devices.readings import Decoded, Rejection


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 10.0, what: str = ""
) -> None:
    """Wait until ``condition`` holds, polling; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or condition}")
        await asyncio.sleep(0.01)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Synchronous :func:`eventually`, for tests that drive subprocesses."""
    deadline = time.monotonic() + timeout_s
    delay_s = 0.02
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(delay_s)  # polling a subprocess's state, with a deadline
        delay_s = min(delay_s * 1.5, 0.5)


def reading_payload(ts_ms: int, seq: int | None = None, **metrics: float) -> bytes:
    """A native payload."""
    document: dict[str, Any] = {"ts": ts_ms, **metrics}
    if seq is not None:
        document["seq"] = seq
    return json.dumps(document).encode()


def only_rejection(decoded: Decoded) -> Rejection:
    """The one rejection of a decoded message that yielded no reading."""
    assert decoded.readings == []
    assert len(decoded.rejections) == 1
    return decoded.rejections[0]


def influx_query(url: str, database: str, statement: str) -> list[dict[str, Any]]:
    """Series of the first statement's result (empty when none)."""
    query = urllib.parse.urlencode({"q": statement, "db": database, "epoch": "ns"})
    with urllib.request.urlopen(f"{url}/query?{query}", timeout=10) as response:
        document = json.load(response)
    result = document["results"][0]
    if "error" in result:
        if "database not found" in result["error"]:
            return []
        raise AssertionError(result["error"])
    series: list[dict[str, Any]] = result.get("series", [])
    return series


def influx_count(url: str, database: str, field: str = "water_level_cm") -> int:
    """How many telemetry points carry ``field``."""
    try:
        series = influx_query(url, database, f'SELECT count("{field}") FROM telemetry')
    except OSError:
        return -1
    return int(series[0]["values"][0][1]) if series else 0


def json_scalars(text_size: int) -> st.SearchStrategy[Any]:
    """JSON's scalars, NaN and the infinities among the floats (``json.dumps`` writes them)."""
    return st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=text_size)


def json_values(
    *, text_size: int = 12, key_size: int = 8, max_leaves: int = 25
) -> st.SearchStrategy[Any]:
    """Any JSON document: scalars, and lists and objects of them nested."""
    return st.recursive(
        json_scalars(text_size),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=key_size), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )
