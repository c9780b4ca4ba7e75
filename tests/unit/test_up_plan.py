"""The pure decisions of ``siaga up``: storage, accounts, restarts, the status line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.notify.policy import parse_policy
from devices.registry import load_registry
from ingest.retry import RetryPolicy
from ingest.settings import Settings
from ops.datadir import DataDir
from ops.errors import ServerError
from ops.servers import MosquittoServer
from ops.settings import Settings as WholeSettings
from ops.settings import load
from ops.status import Status, metric_total, parse_metrics, status_from_metrics, status_line
from ops.supervisor import RestartPolicy
from ops.up import (
    ALERTS_ACCOUNT,
    INGEST_ACCOUNT,
    Wiring,
    accounts,
    demo_policy,
    ingest_environment,
    part_environments,
    plan_storage,
    with_passwords,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("choice", "answers", "installed", "expected"),
    [
        ("auto", True, True, "external-influx"),
        ("auto", False, True, "own-influx"),
        ("auto", False, False, "sqlite"),
        ("influx", True, False, "external-influx"),
        ("influx", False, True, "own-influx"),
        ("sqlite", True, True, "sqlite"),
    ],
)
def test_storage_is_influxdb_when_one_can_be_had(
    choice: str, answers: bool, installed: bool, expected: str
) -> None:
    assert (
        plan_storage(choice, configured_answers=answers, influxd_installed=installed)  # type: ignore[arg-type]
        == expected
    )


def test_asking_for_influxdb_where_none_can_be_had_says_what_to_install() -> None:
    with pytest.raises(ServerError, match="apt-get install influxdb"):
        plan_storage("influx", configured_answers=False, influxd_installed=False)


def test_local_accounts_are_the_publishers_and_siagas_own_readers() -> None:
    registry = load_registry(REPO / "config/stations.yaml", REPO / "config/devices.yaml")
    names = accounts(registry)
    assert INGEST_ACCOUNT in names
    assert ALERTS_ACCOUNT in names
    assert "gauge-tb-menggala" in names
    lorawan = [d.id for d in registry.devices.values() if d.format in {"ttn", "chirpstack"}]
    assert lorawan
    assert not set(lorawan) & set(names), "LoRaWAN devices publish through their integration"
    assert names == sorted(names)


def test_passwords_are_kept_across_runs_and_made_for_new_accounts() -> None:
    first = with_passwords({}, ["a", "b"])
    assert len({first["a"], first["b"]}) == 2
    second = with_passwords(first, ["a", "b", "c"])
    assert second["a"] == first["a"]
    assert second["b"] == first["b"]
    assert second["c"] not in {first["a"], first["b"]}


def test_restart_backoff_doubles_up_to_its_cap_and_resets_after_a_stable_run() -> None:
    policy = RestartPolicy(
        RetryPolicy(initial_s=1, max_s=10, jitter="none", deadline_s=None), stable_s=60
    )
    assert [policy.delay_s(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert policy.failures_after(5, ran_for_s=3) == 6
    assert policy.failures_after(5, ran_for_s=61) == 1


METRICS = """\
# HELP siaga_readings_stored_total Readings made durable.
# TYPE siaga_readings_stored_total counter
siaga_readings_stored_total 1200.0
siaga_rejections_total{reason="out_of_range"} 3.0
siaga_rejections_total{reason="bad_topic"} 2.0
siaga_spool_records 4.0
siaga_storage_up 1.0
garbage line without value x
"""


def test_metrics_text_is_summed_over_labels() -> None:
    samples = parse_metrics(METRICS)
    assert metric_total(samples, "siaga_rejections_total") == 5
    assert metric_total(samples, "siaga_readings_stored") == 0, "a prefix is not a metric"
    status = status_from_metrics(samples)
    assert status == Status(1200, 5, 4, storage_up=True)


def test_status_line_shows_the_rate_between_two_readings() -> None:
    before = Status(1000, 0, 0, True)
    after = Status(1500, 2, 3, True, stations_reporting=6, active_incidents=1)
    line = status_line(before, after, elapsed_s=2.0)
    assert line.startswith("250 readings/s")
    assert "6 stations reporting" in line
    assert "1 active incidents" in line
    assert "spool 3 batches" in line
    assert "STORAGE DOWN" in status_line(None, Status(10, 0, 1, False), 1.0)


def test_the_demo_policy_sends_every_alert_to_the_local_inbox_even_late_ones() -> None:
    policy = parse_policy(demo_policy(2525))
    assert policy.default_groups == ["inbox"]
    (recipient,) = policy.recipients
    assert recipient.language == "id"
    (channel,) = recipient.channels
    assert "127.0.0.1:2525" in channel.url
    assert channel.pages is False, "the demo's back-dated readings are late: not paged"


def test_up_keeps_the_workers_health_tracker_off_beside_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    common = {"SIAGA_CONFIG": "siaga.yaml", "SIAGA_HEALTH__ENABLED": "true"}
    env = ingest_environment(common, client_id="siaga-ingest-1", metrics_port=9464)
    assert env["SIAGA_CONFIG"] == "siaga.yaml"
    assert env["SIAGA_MQTT__CLIENT_ID"] == "siaga-ingest-1"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().health.enabled is False


def test_status_line_names_a_lasting_storage_refusal() -> None:
    text = METRICS + 'siaga_storage_errors_total{kind="auth"} 3.0\n'
    text += 'siaga_storage_errors_total{kind="unavailable"} 9.0\nsiaga_ready 0.0\n'
    status = status_from_metrics(parse_metrics(text))
    assert status.refused_by_storage == ("auth",)
    assert "STORAGE REFUSES WRITES (auth" in status_line(None, status, 1.0)
    ready_again = status_from_metrics(
        parse_metrics(text.replace("siaga_ready 0.0", "siaga_ready 1.0"))
    )
    assert ready_again.refused_by_storage == ()


READ_ONLY_PATHS = {"stations.file", "stations.devices_file", "alerts.rules_file", "public.file"}
"""Settings that name files a part only reads (the registry, rules and public regencies)."""


def _paths(model: object, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """Every file or directory a settings tree names: Path fields and SQLite URLs."""
    for name in type(model).model_fields:  # type: ignore[attr-defined]
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, Path):
            yield key, value
        elif isinstance(value, str) and value.startswith("sqlite:///"):
            yield key, Path(value.removeprefix("sqlite:///"))
        elif hasattr(type(value), "model_fields"):
            yield from _paths(value, f"{key}.")


def _wiring(root: Path, *, influx: bool) -> Wiring:
    return Wiring(
        data_dir=DataDir(root),
        mqtt_url="mqtt://127.0.0.1:1883",
        influx_url="http://127.0.0.1:8086" if influx else None,
        web_url="http://127.0.0.1:8080",
        secret_key="s" * 32,
        config=None,
        metrics_port=9464,
        alerts_metrics_port=9465,
        broker_passwords={INGEST_ACCOUNT: "p1", ALERTS_ACCOUNT: "p2"},
    )


def _as_child(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> WholeSettings:
    """The settings tree a child reads with ``env`` (and nothing else of this process's)."""
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("SIAGA_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return load()


@pytest.mark.parametrize("influx", [True, False])
def test_every_part_of_up_writes_under_its_data_directory_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, influx: bool
) -> None:
    root = tmp_path / "data"
    environments = part_environments(_wiring(root, influx=influx))
    assert set(environments) == {"ingest", "alerts", "web", "demo"}
    for part, env in environments.items():
        settings = _as_child(env, monkeypatch)
        for key, path in _paths(settings):
            if key in READ_ONLY_PATHS:
                continue
            assert path.resolve().is_relative_to(root), f"{part}: {key} = {path} is outside"
        if part == "alerts":
            # What the engine uses (alerts/runtime.py): beside the worker's spool, not in it.
            assert settings.engine_spool_dir.resolve().is_relative_to(root)
            assert settings.engine_spool_dir.resolve() != settings.spool.dir.resolve()
            assert not settings.engine_spool_dir.resolve().is_relative_to(
                settings.spool.dir.resolve()
            )


def test_an_older_engine_spool_is_adopted_with_what_waits_in_it(tmp_path: Path) -> None:
    old = tmp_path / "alerts-spool"
    old.mkdir()
    (old / "00000001.spool").write_bytes(b"waiting")
    DataDir(tmp_path).adopt_old_layout()
    assert (tmp_path / "spool-alerts" / "00000001.spool").read_bytes() == b"waiting"
    assert not old.exists()
    DataDir(tmp_path).adopt_old_layout()  # nothing left to move


def test_two_data_directories_give_two_engine_sessions_and_two_worker_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids: dict[str, set[str]] = {"ingest": set(), "alerts": set()}
    for name in ("one", "two"):
        environments = part_environments(_wiring(tmp_path / name, influx=True))
        ids["ingest"].add(_as_child(environments["ingest"], monkeypatch).mqtt.client_id)
        ids["alerts"].add(_as_child(environments["alerts"], monkeypatch).engine_client_id)
    assert len(ids["ingest"]) == 2
    assert len(ids["alerts"]) == 2
    assert "siaga-alerts" not in ids["alerts"], "the default session is shared by every platform"
    assert not ids["ingest"] & ids["alerts"]


def test_the_broker_refuses_what_no_subscriber_would_take_and_forwards_the_rest() -> None:
    limits = load().validation  # the shipped config/siaga.yaml
    shipped = (REPO / "config/mosquitto/mosquitto.conf").read_text()
    assert f"\nmax_packet_size {limits.broker_max_packet_bytes}\n" in shipped
    assert "\nmessage_size_limit" not in shipped, "it acknowledges MQTT 3.1.1 and drops"
    assert limits.max_payload_bytes < limits.broker_max_packet_bytes
    # What the broker forwards is the device's packet plus a few bytes of its own properties.
    assert limits.subscriber_max_packet_bytes - limits.broker_max_packet_bytes >= 1024


def test_the_broker_siaga_starts_carries_the_limit(tmp_path: Path) -> None:
    server = MosquittoServer(tmp_path, port=1883, max_packet_bytes=69632)
    server.write_config()
    assert "max_packet_size 69632" in server.config_path.read_text().splitlines()
    MosquittoServer(tmp_path, port=1883).write_config()
    assert "max_packet_size" not in server.config_path.read_text()
