"""``python -m alerts.notify [CONFIG]``: the notifier alone (dispatcher and sender)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from alerts.notify.runtime import run_notifier
from alerts.settings import Settings
from ingest.settings import load_settings


def main() -> None:
    """Load settings (YAML file then environment) and run until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    settings = load(path)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_notifier(settings))


def load(path: Path | None) -> Settings:
    """Alerting's settings from a YAML file and the environment."""
    return load_settings(path, settings_cls=Settings)


if __name__ == "__main__":
    main()
