"""Each default lives once, in the settings tree: the functions that take one start from it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from alerts.notify.telegram import TelegramApi
from alerts.rules.watch import RulesWatcher
from alerts.settings import AlertsSettings, TelegramSettings
from dashboards.grafana.push import push_dashboards, push_regencies
from dashboards.public.model import build_page
from dashboards.public.site import PublicSite
from dashboards.settings import GrafanaSettings, PublicSettings
from devices.topics import DEFAULT_PREFIX, TopicScheme
from ingest.health import HealthRecorder
from ingest.logs import configure_logging
from ingest.settings import (
    HealthSettings,
    LogSettings,
    MqttSettings,
    SpoolSettings,
    StorageSettings,
)
from ingest.spool import Spool
from ingest.storage.sqlite import SqliteStorage
from simulators.fleet import run_fleet
from simulators.replay import run_replay
from simulators.runner import run_scenario


@pytest.mark.parametrize(
    ("function", "parameter", "setting"),
    [
        (HealthRecorder, "interval_s", HealthSettings().interval_s),
        (HealthRecorder, "heartbeat_s", HealthSettings().heartbeat_s),
        (RulesWatcher, "interval_s", AlertsSettings().reload_interval_s),
        (Spool, "segment_bytes", SpoolSettings().segment_bytes),
        (SqliteStorage, "synchronous", StorageSettings().sqlite_synchronous),
        (configure_logging, "level", LogSettings().level),
        (configure_logging, "fmt", LogSettings().format),
        (push_dashboards, "timeout_s", GrafanaSettings().timeout_s),
        (push_regencies, "timeout_s", GrafanaSettings().timeout_s),
        (run_fleet, "topic_prefix", MqttSettings().topic_prefix),
        (run_replay, "topic_prefix", MqttSettings().topic_prefix),
        (run_scenario, "topic_prefix", MqttSettings().topic_prefix),
        (PublicSite, "refresh_s", PublicSettings().refresh_s),
        (PublicSite, "max_age_s", PublicSettings().max_age_s),
        (PublicSite, "stale_intervals", PublicSettings().stale_intervals),
        (PublicSite, "stale_floor_s", PublicSettings().stale_floor_s),
        (build_page, "stale_intervals", PublicSettings().stale_intervals),
        (build_page, "stale_floor_s", PublicSettings().stale_floor_s),
        (TelegramApi, "poll_timeout_s", TelegramSettings().poll_timeout_s),
    ],
)
def test_a_default_is_the_settings_trees(
    function: Callable[..., Any], parameter: str, setting: object
) -> None:
    assert inspect.signature(function).parameters[parameter].default == setting


def test_the_topic_prefix_is_one_constant() -> None:
    assert MqttSettings().topic_prefix == TopicScheme().prefix == DEFAULT_PREFIX
