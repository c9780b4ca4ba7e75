"""The browser tests' shared parts: an app under uvicorn in a thread, Debian's headless chromium."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ops.servers import free_port
from tests.helpers import wait_for

CHROMIUM = Path("/usr/bin/chromium")


@contextlib.contextmanager
def uvicorn_thread(app: Any, **config: Any) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free loopback port until the block ends.

    Args:
        app: The ASGI application.
        config: More of ``uvicorn.Config`` (``lifespan="on"``, ...).

    Yields:
        Its base URL, ``http://127.0.0.1:PORT``.
    """
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config)
    )
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@contextlib.contextmanager
def chromium(artifacts: Path, args: list[str]) -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright; the test is skipped where it is missing.

    Args:
        artifacts: Where the test keeps its screenshots (made here).
        args: Chromium's command-line switches.

    Yields:
        The launched browser, closed when the block ends.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=args, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()
