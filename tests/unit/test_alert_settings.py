"""The ``alerts`` settings section: defaults, YAML and environment, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.settings import Settings
from ingest.errors import ConfigError
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
