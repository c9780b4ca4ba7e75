"""Nothing acknowledged is lost: worker crash, InfluxDB outage, broker restart, shared groups.

The crash, broker-restart and shared-group tests run on both backends a worker can store into:
InfluxDB and the embedded SQLite file (two workers then write one file).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ops.servers import InfluxServer, MosquittoServer
from tests.helpers import influx_count, influx_query, wait_for
from tests.integration.drivers import WorkerProcess, paho_publish, telemetry_messages

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def recent_ms() -> int:
    return time.time_ns() // 1_000_000 - 3_600_000


def seq_sum(influx: InfluxServer, database: str) -> int:
    series = influx_query(influx.url, database, "SELECT sum(seq) FROM telemetry")
    return int(series[0]["values"][0][1]) if series else 0


@dataclass
class Store:
    """Where the workers of one test store: an InfluxDB database or a SQLite file."""

    backend: str
    influx: InfluxServer
    database: str
    sqlite_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def _sqlite(self, sql: str) -> list[tuple[object, ...]]:
        if not self.sqlite_path.exists():
            return []
        connection = sqlite3.connect(self.sqlite_path, timeout=10)
        try:
            return connection.execute(sql).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []
        finally:
            connection.close()

    def _metric(self, aggregate: str, metric: str) -> int:
        rows = self._sqlite(
            f"SELECT {aggregate} FROM telemetry JOIN metrics ON metrics.id = metric_id "
            f"WHERE metrics.name = '{metric}'"
        )
        return int(rows[0][0] or 0) if rows else 0

    def count(self) -> int:
        if self.backend == "influx":
            return influx_count(self.influx.url, self.database)
        return self._metric("count(*)", "water_level_cm")

    def seq_sum(self) -> int:
        if self.backend == "influx":
            return seq_sum(self.influx, self.database)
        return self._metric("sum(value)", "seq")

    def rejected(self) -> list[object]:
        if self.backend == "influx":
            return list(influx_query(self.influx.url, self.database, "SELECT * FROM rejected"))
        return list(self._sqlite("SELECT * FROM rejected"))


@pytest.fixture(params=["influx", "sqlite"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, influx_session: InfluxServer, database: str
) -> Store:
    path = tmp_path / "siaga.sqlite"
    env = {}
    if request.param == "sqlite":
        env = {"SIAGA_STORAGE__BACKEND": "sqlite", "SIAGA_STORAGE__SQLITE_PATH": str(path)}
    return Store(request.param, influx_session, database, path, env)


class Publisher(threading.Thread):
    """Publishes in the background; re-raises its failure on join."""

    def __init__(self, port: int, messages: list[tuple[str, bytes]], client_id: str) -> None:
        super().__init__(daemon=True)
        self.args_ = (port, messages, client_id)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            paho_publish(*self.args_)
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout_s: float = 120) -> None:
        self.join(timeout_s)
        assert not self.is_alive(), "publisher did not finish"
        if self.error is not None:
            raise self.error


def test_kill_9_mid_run_then_restart_stores_exactly_what_was_published(
    tmp_path: Path, broker: MosquittoServer, store: Store
) -> None:
    total = 50_000
    messages = telemetry_messages(total, recent_ms())

    def worker() -> WorkerProcess:
        return WorkerProcess(
            tmp_path / "w", broker.url, store.influx.url, store.database, extra_env=store.env
        )

    running = worker().start()
    publisher = Publisher(broker.port, messages, "pub-kill9")
    publisher.start()
    wait_for(lambda: running.metric("siaga_readings_stored_total") >= 10_000, 60, "10k stored")
    running.kill()
    killed_at = store.count()
    publisher.finish()
    assert killed_at < total, "the worker was killed too late to test anything"
    with worker() as restarted:
        wait_for(lambda: store.count() >= total, 120, "all stored")
        wait_for(lambda: restarted.metric("siaga_spool_records") == 0, 10, "spool empty")
    assert store.count() == total
    assert store.seq_sum() == total * (total - 1) // 2
    assert store.rejected() == []


def test_influxdb_down_for_20_s_spools_then_drains_exactly(
    tmp_path: Path, broker_session: MosquittoServer, influx: InfluxServer, database: str
) -> None:
    total = 30_000
    prefix = "outage"
    messages = telemetry_messages(total, recent_ms(), prefix=prefix)
    with WorkerProcess(
        tmp_path / "w",
        broker_session.url,
        influx.url,
        database,
        client_id="w-outage",
        topic_prefix=prefix,
        shared_group="g-outage",
    ) as worker:
        paho_publish(broker_session.port, messages[:10_000], "pub-outage-1")
        wait_for(lambda: influx_count(influx.url, database) == 10_000, 60, "first third")
        influx.stop()
        outage_started = time.monotonic()
        publisher = Publisher(broker_session.port, messages[10_000:], "pub-outage-2")
        publisher.start()
        publisher.finish()
        wait_for(
            lambda: worker.metric("siaga_messages_acknowledged_total") == total,
            60,
            "everything acknowledged from the spool while InfluxDB is down",
        )
        assert worker.metric("siaga_spool_records") > 0
        assert worker.metric("siaga_storage_up") == 0
        wait_for(lambda: time.monotonic() - outage_started >= 20, 30, "a 20 s outage")
        influx.start()
        wait_for(lambda: influx_count(influx.url, database) == total, 90, "drained")
        wait_for(lambda: worker.metric("siaga_spool_records") == 0, 10, "spool gauge empty")
        assert worker.metric("siaga_spooled_batches_total") > 0
        assert worker.metric("siaga_storage_up") == 1
    assert list((tmp_path / "w" / "spool").glob("*.spool")) == []
    assert seq_sum(influx, database) == total * (total - 1) // 2


def test_broker_restart_mid_run_reconnects_and_loses_nothing(
    tmp_path: Path, broker: MosquittoServer, store: Store
) -> None:
    first, second = 20_000, 10_000
    base = recent_ms()
    with WorkerProcess(
        tmp_path / "w",
        broker.url,
        store.influx.url,
        store.database,
        client_id="w-restart",
        extra_env=store.env,
    ) as worker:
        paho_publish(broker.port, telemetry_messages(first, base), "pub-restart-1")
        broker.stop()  # graceful: mosquitto writes its persistence file, unacked messages too
        broker.start()
        wait_for(lambda: worker.metric("siaga_mqtt_connected") == 1, 30, "reconnected")
        paho_publish(broker.port, telemetry_messages(second, base, start=first), "pub-restart-2")
        wait_for(
            lambda: store.count() == first + second,
            90,
            "every reading from both sides of the restart",
        )
        assert worker.metric("siaga_mqtt_reconnects_total") >= 1
    assert store.seq_sum() == (first + second) * (first + second - 1) // 2


def test_two_workers_in_a_shared_group_store_every_reading_once(
    tmp_path: Path, broker_session: MosquittoServer, store: Store
) -> None:
    total = 20_000
    prefix = f"shared-{store.backend}"
    common = {"topic_prefix": prefix, "shared_group": f"g-{prefix}", "extra_env": store.env}
    with (
        WorkerProcess(
            tmp_path / "a",
            broker_session.url,
            store.influx.url,
            store.database,
            client_id=f"w-{prefix}-a",
            **common,
        ) as a,  # type: ignore[arg-type]
        WorkerProcess(
            tmp_path / "b",
            broker_session.url,
            store.influx.url,
            store.database,
            client_id=f"w-{prefix}-b",
            **common,
        ) as b,  # type: ignore[arg-type]
    ):
        paho_publish(
            broker_session.port, telemetry_messages(total, recent_ms(), prefix=prefix), "pub-shared"
        )
        wait_for(lambda: store.count() == total, 60, "all stored")
        received_a = a.metric("siaga_messages_received_total")
        received_b = b.metric("siaga_messages_received_total")
    assert received_a + received_b == total
    assert received_a > total * 0.2
    assert received_b > total * 0.2
    assert store.seq_sum() == total * (total - 1) // 2


def test_retiring_a_worker_from_a_shared_group_as_the_readme_says(
    tmp_path: Path, broker_session: MosquittoServer, influx_session: InfluxServer, database: str
) -> None:
    prefix, group = "retire", "g-retire"
    base = recent_ms()

    def worker(name: str, **env: str) -> WorkerProcess:
        return WorkerProcess(
            tmp_path / name,
            broker_session.url,
            influx_session.url,
            database,
            client_id=f"w-retire-{name}",
            topic_prefix=prefix,
            shared_group=group,
            extra_env=env,
        )

    with worker("a") as a:
        with worker("b"):
            pass  # b now has a persistent session in the group, and is offline
        paho_publish(broker_session.port, telemetry_messages(2000, base, prefix=prefix), "p-r1")
        # Mosquitto queues a share for b's offline session: nothing is lost, but it waits.
        wait_for(lambda: a.metric("siaga_messages_acknowledged_total") > 0, 20, "a's share")
        assert influx_count(influx_session.url, database) < 2000
        # Retire b: start it once with session expiry 0; it stores its share, then its session
        # ends with the connection.
        with worker("b", SIAGA_MQTT__SESSION_EXPIRY_S="0") as b:
            wait_for(lambda: influx_count(influx_session.url, database) == 2000, 30, "b drained")
            wait_for(lambda: b.metric("siaga_messages_acknowledged_total") > 0, 10, "b acked")
        received_before = a.metric("siaga_messages_received_total")
        paho_publish(
            broker_session.port, telemetry_messages(1000, base, prefix=prefix, start=2000), "p-r2"
        )
        wait_for(lambda: influx_count(influx_session.url, database) == 3000, 30, "all stored")
        assert a.metric("siaga_messages_received_total") == received_before + 1000  # a alone
