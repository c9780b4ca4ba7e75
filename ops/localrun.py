"""``siaga up``: the worker with the broker and InfluxDB it finds, or local ones it starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from ingest.runtime import influx_configured, influxd_installed, run_ingest
from ingest.settings import Settings
from ops.servers import InfluxServer, MosquittoServer, port_open

log = logging.getLogger(__name__)

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _influx_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:  # noqa: S310
            return bool(response.status == 204)
    except (urllib.error.URLError, OSError):
        return False


async def run_up(settings: Settings, state_dir: Path) -> None:
    """Run the worker; start a local broker or InfluxDB first where the configured one is silent.

    Servers started here keep their data under ``state_dir`` and stop when the worker stops.
    """
    with contextlib.ExitStack() as servers:
        mqtt = settings.mqtt
        if port_open(mqtt.port, mqtt.host):
            log.info("using the MQTT broker at %s", mqtt.url)
        elif mqtt.host in _LOCAL_HOSTS:
            log.info("no broker answers at %s: starting mosquitto there", mqtt.url)
            servers.enter_context(MosquittoServer(state_dir / "mosquitto", port=mqtt.port))
        influx = settings.influx
        backend = settings.storage.backend
        if backend == "sqlite":
            log.info("storage: embedded SQLite at %s", settings.storage.sqlite_path)
        elif _influx_answers(influx.url):
            log.info("using InfluxDB at %s", influx.url)
        elif backend == "auto" and not influx_configured(influx) and not influxd_installed():
            log.info(
                "no InfluxDB answers or is installed: storing in the embedded SQLite file %s",
                settings.storage.sqlite_path,
            )
        else:
            parts = urlsplit(influx.url)
            if parts.hostname in _LOCAL_HOSTS:
                log.info("no InfluxDB answers at %s: starting influxd there", influx.url)
                servers.enter_context(InfluxServer(state_dir / "influxdb", port=parts.port or 8086))
        await run_ingest(settings, asyncio.Event())
