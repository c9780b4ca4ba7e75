"""The ``alerts`` settings section: defaults, YAML and environment, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.loop import LoopPolicy
from alerts.settings import Settings
from ingest.errors import ConfigError
from ingest.retry import RetryPolicy
from ingest.settings import load_settings


def test_defaults_need_no_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, settings_cls=Settings)
    assert settings.alerts.rules_file == Path("config/rules.yaml")
    assert settings.alerts.late_lag_s == 600.0
    assert settings.alerts.stations is None
    assert settings.alerts.regencies is None


def test_a_share_of_the_country_from_yaml_and_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "siaga.yaml"
    config.write_text("alerts:\n  regencies: [Tulang Bawang, Way Kanan]\n  late_lag_s: 900\n")
    monkeypatch.setenv("SIAGA_ALERTS__STATIONS", '["ciliwung-katulampa"]')
    settings = load_settings(config, settings_cls=Settings)
    assert settings.alerts.regencies == ["Tulang Bawang", "Way Kanan"]
    assert settings.alerts.stations == ["ciliwung-katulampa"]
    assert settings.alerts.late_lag_s == 900


def test_a_bad_value_names_its_key(tmp_path: Path) -> None:
    config = tmp_path / "siaga.yaml"
    config.write_text("alerts:\n  late_lag_s: -1\n")
    with pytest.raises(ConfigError, match=r"alerts\.late_lag_s"):
        load_settings(config, settings_cls=Settings)


def test_the_loop_policy_is_built_from_the_settings_and_defaults_to_them(tmp_path: Path) -> None:
    assert LoopPolicy.from_settings(Settings()) == LoopPolicy()
    config = tmp_path / "siaga.yaml"
    config.write_text(
        "alerts:\n  commit_interval_s: 0.05\n  max_cycles_in_flight: 4\n  retry_max_s: 9\n"
        "health:\n  interval_s: 30\n  restart_max_s: 7\n"
    )
    policy = LoopPolicy.from_settings(load_settings(config, settings_cls=Settings))
    assert (policy.commit_interval_s, policy.max_cycles_in_flight) == (0.05, 4)
    assert (policy.health_interval_s, policy.restart.max_s) == (30.0, 7.0)
    assert policy.retry == RetryPolicy(
        initial_s=0.1, max_s=9.0, multiplier=2.0, jitter="none", deadline_s=None
    )


def test_the_engine_session_and_spool_come_from_the_spine_keys() -> None:
    default = Settings()
    # Host-independent by default: the two engines of a hot-standby pair share it.
    assert default.engine_client_id == "siaga-alerts"
    assert default.engine_spool_dir == Path("var/spool-alerts")
    configured = Settings.model_validate(
        {"mqtt": {"client_id": "bpbd-lampung"}, "spool": {"dir": "/srv/siaga/spool"}}
    )
    # One settings file read by a worker and an engine: two sessions, two spools side by side.
    assert configured.engine_client_id == "bpbd-lampung-alerts"
    assert configured.engine_client_id != configured.mqtt.client_id
    assert configured.engine_spool_dir == Path("/srv/siaga/spool-alerts")
    assert not configured.engine_spool_dir.is_relative_to(configured.spool.dir)


def test_the_environment_names_the_engine_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIAGA_MQTT__CLIENT_ID", "e-1")
    assert Settings().engine_client_id == "e-1-alerts"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("alerts: {client_id: x}", "alerts: client_id is no longer a setting: set mqtt.client_id"),
        ("alerts: {spool_dir: x}", "alerts: spool_dir is no longer a setting: set spool.dir"),
        (
            "notify: {ack_base_url: 'https://x'}",
            "notify: ack_base_url is no longer a setting: set api.public_url",
        ),
        (
            "notify: {ack_secret: s}",
            "notify: ack_secret is no longer a setting: set api.secret_key",
        ),
    ],
)
def test_a_folded_key_is_refused_with_the_key_to_set(tmp_path: Path, text: str, line: str) -> None:
    config = tmp_path / "siaga.yaml"
    config.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, settings_cls=Settings)
    assert f"  {line}" in str(info.value)


def test_a_folded_key_in_the_environment_is_refused_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SIAGA_NOTIFY__ACK_SECRET", "s" * 32)
    with pytest.raises(ConfigError, match=r"notify: ack_secret .* set api\.secret_key"):
        load_settings(None, settings_cls=Settings)
