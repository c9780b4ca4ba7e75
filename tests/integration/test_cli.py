"""The `siaga` command at its boundary: bad configuration, and `siaga up` on a bare machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration


def siaga(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siaga", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env.update(values)
    return env


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SIAGA_MQTT__URL", "http://broker:1883", "mqtt.url: scheme must be mqtt://"),
        ("SIAGA_INFLUX__TIMEOUT_S", "-1", "influx.timeout_s: Input should be greater than 0"),
        ("SIAGA_BATCH__MAX_POINTS", "lots", "batch.max_points: Input should be a valid integer"),
        ("SIAGA_STATIONS__FILE", "/nonexistent/stations.yaml", "cannot read"),
    ],
)
def test_bad_configuration_is_refused_at_start_naming_the_key(
    variable: str, value: str, message: str, tmp_path: Path
) -> None:
    result = siaga(
        "ingest",
        env=clean_env(
            **{variable: value},
            SIAGA_SPOOL__DIR=str(tmp_path / "spool"),
            SIAGA_METRICS__ENABLED="false",
        ),
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_keys_in_the_config_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "siaga.yaml"
    config.write_text("mqtt:\n  urll: mqtt://x\n")
    result = siaga("ingest", "--config", str(config), env=clean_env())
    assert result.returncode == 2
    assert "mqtt.urll: unknown setting" in result.stderr
