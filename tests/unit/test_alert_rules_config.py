"""The rules file: defaults, overrides per regency, river and station; refusals name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.rules.config import RulesConfig, RulesFileError, load_rules, parse_rules, reload_rules
from devices.stations import load_stations
from tests.alerting import station
from tests.conftest import REPO_ROOT

RULES = """
defaults:
  level: {recovery_band_pct: 4}
overrides:
  - match: {station: s1}
    level: {hold_s: 60}
  - match: {regency: R}
    level: {hold_s: 600, recovery_band_pct: 10}
  - match: {river: Kali}
    level: {hold_s: 300}
    rate: [{name: rise_1d, window_s: 86400, rise_cm: 40}]
"""


def test_an_empty_file_means_the_defaults() -> None:
    assert parse_rules("") == RulesConfig()
    assert load_rules(None) == RulesConfig()
    assert load_rules(Path("/nonexistent/rules.yaml")) == RulesConfig()


def test_overrides_apply_regency_then_river_then_station() -> None:
    rules = parse_rules(RULES)
    s1 = rules.for_station(station("s1", regency="R", river="Kali"))
    assert s1.level.hold_s == 60  # station beats river beats regency
    assert s1.level.recovery_band_pct == 10  # from the regency, merged field by field
    assert [r.name for r in s1.rate] == ["rise_1d"]  # rate replaced whole
    other = rules.for_station(station("s2", regency="R", river="Lain"))
    assert other.level.hold_s == 600
    assert rules.for_station(station("s3", regency="Q", river=None)) == rules.defaults
    assert rules.defaults.level.recovery_band_pct == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("defaults: {level: {recovery_band_pct: 120}}", "defaults.level.recovery_band_pct"),
        ("defaults: {levle: {}}", "defaults.levle"),
        ("overrides: [{match: {station: a, river: b}}]", "exactly one"),
        ("overrides: [{match: {station: a}, level: {hold_s: -1}}]", "overrides[0]: level.hold_s"),
        ("defaults: {rate: [{name: x, window_s: 60}]}", "exactly one of rise_cm or fall_cm"),
        ("defaults: {pending_s: {levels: 5}}", "unknown kind"),
        ("version: 2", "version"),
        ("defaults: [", "not valid YAML"),
    ],
)
def test_a_broken_file_is_refused_naming_the_key(text: str, expected: str) -> None:
    with pytest.raises(RulesFileError, match="<rules>") as caught:
        parse_rules(text)
    assert expected in str(caught.value)


def test_a_broken_edit_keeps_the_last_good_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    good, problem = reload_rules(path, RulesConfig())
    assert problem is None
    assert good.defaults.level.recovery_band_pct == 4
    path.write_text("defaults: {level: {hold_s: nope}}")
    kept, problem = reload_rules(path, good)
    assert kept is good
    assert problem is not None
    assert "hold_s" in problem


def test_the_shipped_example_is_valid_and_matches_real_stations() -> None:
    rules = load_rules(REPO_ROOT / "config" / "rules.yaml")
    registry = load_stations(REPO_ROOT / "config" / "stations.yaml")
    matched = {s.id for s in registry.stations() if rules.for_station(s) is not rules.defaults}
    assert {"ciliwung-katulampa", "tb-dente-teladas", "tb-menggala"} <= matched
