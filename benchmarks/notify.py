"""The notification latency benchmark: reading published → signed webhook received.

Real servers in a temporary directory: Mosquitto, InfluxDB, ``siaga alerts run`` (engine and
notifier in one process, SQLite incident database) and a webhook receiver that checks every
signature. A background fleet publishes ordinary readings at ``rate_per_s`` (the ingest
benchmark's half load by default) while probe stations alternate across their WASPADA
threshold every ``probe_interval_s``: each probe reading is one level transition. Its latency
is from the moment the probe was handed to the broker (acknowledged) to the moment the
webhook carrying its alert arrived. Grouping is set to send at once (``group_wait_s: 0``) so
the figure measures the pipeline, not the policy's deliberate waits.

Run it as ``siaga bench alerts --webhook`` (or ``python -m benchmarks.notify``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from alerts.notify.webhook import SIGNATURE_HEADER, verify
from benchmarks.ingest import FleetPublisher, station_ids, stations_yaml
from devices.topics import TopicScheme
from ops.servers import InfluxServer, MosquittoServer, free_port, wait_until

HALF_LOAD_PER_S = 17_800.0  # the ingest benchmark's half load (docs/benchmarks.md)
TARGET_P99_S = 1.0
KEY = "bench-webhook-key"
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Probes:
    """Probe readings in flight and their latencies."""

    sent: dict[tuple[str, str], float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    published_wall: dict[tuple[str, str], float] = field(default_factory=dict)
    arrived_wall: dict[tuple[str, str], float] = field(default_factory=dict)
    bad_signatures: int = 0
    messages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arrived(self, body: bytes, signature: str | None) -> None:
        """A webhook POST arrived."""
        now = time.monotonic()
        wall = time.time()
        if signature is None or not verify(KEY.encode(), body, signature):
            with self.lock:
                self.bad_signatures += 1
            return
        document = json.loads(body)
        with self.lock:
            self.messages += 1
            for alert in document["alerts"]:
                if alert["kind"] != "level":
                    continue
                key = (alert["station"], alert["at"])
                published = self.sent.pop(key, None)
                if published is not None:
                    self.latencies.append(now - published)
                    self.arrived_wall[key] = wall


@contextmanager
def receiver(probes: Probes, port: int) -> Iterator[None]:
    """A real HTTP server that hands every POST to ``probes``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            probes.arrived(body, self.headers.get(SIGNATURE_HEADER))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="bench.webhook", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


class QuietFleet(FleetPublisher):
    """The ingest benchmark's publisher with steady readings (no alert of their own)."""

    def payload(self, k: int, index: int, ts_ms: int) -> bytes:
        """A steady level, well below any threshold."""
        return b'{"ts":%d,"seq":%d,"water_level_cm":50.0,"battery_v":3.91}' % (
            ts_ms,
            k // len(self._stations),
        )


def probe_ids(count: int) -> list[str]:
    """The probe stations."""
    return [f"probe-{index:03d}" for index in range(count)]


def registry_yaml(background: int, probes: int) -> str:
    """Background gauges without thresholds, and probe gauges with them."""
    text = stations_yaml(background)
    for index, station in enumerate(probe_ids(probes)):
        text += (
            f"  - id: {station}\n    name: Probe {index}\n    regency: Probe Regency\n"
            f"    river: Probe River {index}\n    latitude: -6.5\n    longitude: 106.8\n"
            "    profile: river_gauge\n    thresholds:\n"
            "      - {waspada_cm: 100, siaga_cm: 200, awas_cm: 300}\n"
        )
    return text


POLICY = """
recipients:
  - name: bench
    language: id
    channels:
      - {{name: hook, type: webhook, url: "http://127.0.0.1:{port}/hook",
          secret_env: BENCH_HOOK_KEY}}
groups: [{{name: bench, members: [bench]}}]
routes: [{{match_re: {{station: "probe-.*"}}, groups: [bench]}}]
group_by: [station]
group_wait_s: 0
group_interval_s: 0.01
"""


def percentile(values: Sequence[float], quantile: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(quantile * len(ordered)) - 1))
    return ordered[rank]


def run_notify_benchmark(
    rate_per_s: float = HALF_LOAD_PER_S,
    seconds: float = 20.0,
    background: int = 1000,
    probes: int = 40,
    probe_interval_s: float = 0.1,
    tick_s: float = 0.02,
    separate: bool = False,
) -> dict[str, float]:
    """Measure and print; returns the figures."""
    say = print
    say(
        f"notify benchmark: {rate_per_s:,.0f} readings/s for {seconds:.0f} s over "
        f"{background:,} gauges, a probe every {probe_interval_s} s over {probes} gauges, "
        f"notify.tick_s {tick_s}, notifier {'in its own process' if separate else 'in the engine'}"
    )
    say(f"python {platform.python_version()}, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    state = Probes()
    hook_port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="siaga-bench-notify-") as temp,
        MosquittoServer(Path(temp) / "mqtt") as broker,
        InfluxServer(Path(temp) / "influx") as influx,
        receiver(state, hook_port),
    ):
        directory = Path(temp)
        (directory / "stations.yaml").write_text(registry_yaml(background, probes))
        (directory / "alerts.yaml").write_text(POLICY.format(port=hook_port))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
        env.update(
            SIAGA_MQTT__URL=broker.url,
            SIAGA_INFLUX__URL=influx.url,
            SIAGA_INFLUX__DATABASE="bench",
            SIAGA_DATABASE__URL=f"sqlite:///{directory / 'siaga.db'}",
            SIAGA_STATIONS__FILE=str(directory / "stations.yaml"),
            SIAGA_STATIONS__DEVICES_FILE=str(directory / "devices.yaml"),
            SIAGA_MQTT__CLIENT_ID="bench",  # the engine's session: bench-alerts
            SIAGA_SPOOL__DIR=str(directory / "spool"),  # the engine's: spool-alerts
            SIAGA_ALERTS__RULES_FILE=str(directory / "rules.yaml"),
            SIAGA_NOTIFY__POLICY_FILE=str(directory / "alerts.yaml"),
            SIAGA_NOTIFY__TICK_S=str(tick_s),
            SIAGA_NOTIFY__IN_ENGINE=str(not separate).lower(),
            BENCH_HOOK_KEY=KEY,
        )
        log_path = directory / "engine.log"
        notifier: subprocess.Popen[bytes] | None = None
        with log_path.open("wb") as log:
            engine = subprocess.Popen(
                [sys.executable, "-m", "siaga", "alerts", "run"],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(
                lambda: engine.poll() is not None or _subscribed(directory),
                60,
                "the engine to subscribe",
            )
            if engine.poll() is not None:
                raise SystemExit(f"the engine exited:\n{log_path.read_text()}")
            if separate:
                with (directory / "notifier.log").open("wb") as log:
                    notifier = subprocess.Popen(
                        [sys.executable, "-m", "siaga", "alerts", "notify"],
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                wait_until(
                    lambda: "leading" in (directory / "notifier.log").read_text(errors="replace"),
                    60,
                    "the notifier to lead",
                )
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe")
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            stations = probe_ids(probes)
            last_s = dict.fromkeys(stations, 0)
            value = dict.fromkeys(stations, 90.0)

            def probe(station: str, cm: float, measure: bool) -> None:
                ts_s = max(int(time.time()), last_s[station] + 1)
                last_s[station] = ts_s
                payload = json.dumps({"ts": ts_s * 1000, "water_level_cm": cm, "battery_v": 3.9})
                info = client.publish(TopicScheme().telemetry(station), payload, qos=1)
                info.wait_for_publish(10)
                if measure:
                    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_s))
                    with state.lock:
                        state.sent[(station, at)] = time.monotonic()
                        state.published_wall[(station, at)] = time.time()

            for station in stations:  # a first, normal reading each
                probe(station, 90.0, measure=False)
            time.sleep(1.0)  # the engine has them before the first crossing
            fleet = QuietFleet(broker.port, station_ids(background))
            load = threading.Thread(
                target=fleet.publish,
                args=(int(rate_per_s * seconds), rate_per_s),
                name="bench.fleet",
                daemon=True,
            )
            started = time.monotonic()
            load.start()
            turn = 0
            while load.is_alive() and time.monotonic() - started < seconds * 3:
                station = stations[turn % probes]
                value[station] = 110.0 if value[station] < 100 else 90.0
                probe(station, value[station], measure=True)
                turn += 1
                time.sleep(probe_interval_s)
            achieved = int(rate_per_s * seconds) / (time.monotonic() - started)
            load.join(60)
            fleet.close()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and state.sent:
                time.sleep(0.1)
            client.loop_stop()
            client.disconnect()
            committed = committed_at(directory / "siaga.db")
        finally:
            if notifier is not None:
                notifier.terminate()
                notifier.wait(30)
            engine.terminate()
            try:
                engine.wait(30)
            except subprocess.TimeoutExpired:
                engine.kill()
    latencies = state.latencies
    if not latencies:
        raise SystemExit(f"no probe arrived; engine log:\n{log_path.read_text()[-3000:]}")
    figures = {
        "offered_per_s": rate_per_s,
        "achieved_per_s": achieved,
        "probes": float(turn),
        "arrived": float(len(latencies)),
        "missing": float(len(state.sent)),
        "bad_signatures": float(state.bad_signatures),
        "p50_s": percentile(latencies, 0.5),
        "p99_s": percentile(latencies, 0.99),
        "max_s": max(latencies),
    }
    say(
        f"background {achieved:,.0f} readings/s achieved; {turn} probe crossings, "
        f"{len(latencies)} arrived, {len(state.sent)} missing, "
        f"{state.bad_signatures} bad signatures"
    )
    say(
        f"published → webhook received: p50 {figures['p50_s'] * 1000:.0f} ms, "
        f"p99 {figures['p99_s'] * 1000:.0f} ms, max {figures['max_s'] * 1000:.0f} ms"
    )
    verdict = "meets" if figures["p99_s"] < TARGET_P99_S and not state.sent else "MISSES"
    say(f"target p99 < {TARGET_P99_S:.0f} s with nothing missing: {verdict}")
    engine_s = [
        committed[k] - state.published_wall[k] for k in state.arrived_wall if k in committed
    ]
    notify_s = [state.arrived_wall[k] - committed[k] for k in state.arrived_wall if k in committed]
    uncommitted = sum(1 for k in state.sent if k not in committed)
    if engine_s and notify_s:
        figures |= {
            "engine_p50_s": percentile(engine_s, 0.5),
            "engine_p99_s": percentile(engine_s, 0.99),
            "notify_p50_s": percentile(notify_s, 0.5),
            "notify_p99_s": percentile(notify_s, 0.99),
            "missing_uncommitted": float(uncommitted),
        }
        ms = {name: value * 1000 for name, value in figures.items() if name.endswith("_s")}
        say(
            f"  of which published → transition committed (engine): p50 {ms['engine_p50_s']:.0f}"
            f" ms, p99 {ms['engine_p99_s']:.0f} ms; committed → webhook received (notifier): "
            f"p50 {ms['notify_p50_s']:.0f} ms, p99 {ms['notify_p99_s']:.0f} ms"
        )
        say(f"  missing probes not yet committed by the engine: {uncommitted} of {len(state.sent)}")
    return figures


def committed_at(database: Path) -> dict[tuple[str, str], float]:
    """When the engine committed each level transition: (station, event time) → wall seconds."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT event, committed_ns FROM incident_transitions").fetchall()
    found: dict[tuple[str, str], float] = {}
    for event_json, committed_ns in rows:
        event = json.loads(event_json)
        if event["kind"] != "level":
            continue
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["at_ns"] // 1_000_000_000))
        found.setdefault((event["subject"], at), committed_ns / 1e9)
    return found


def _subscribed(directory: Path) -> bool:
    return "MQTT subscribed" in (directory / "engine.log").read_text(errors="replace")


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.notify``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=HALF_LOAD_PER_S)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--background", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--probe-interval", type=float, default=0.1)
    parser.add_argument("--tick", type=float, default=0.02)
    parser.add_argument("--separate", action="store_true", help="notifier in its own process")
    args = parser.parse_args(argv)
    run_notify_benchmark(
        args.rate,
        args.seconds,
        args.background,
        args.probes,
        args.probe_interval,
        args.tick,
        separate=args.separate,
    )


if __name__ == "__main__":
    main()
