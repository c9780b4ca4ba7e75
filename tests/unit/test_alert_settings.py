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
