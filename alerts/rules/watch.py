"""Picks up edits of the rules file in a running engine; a broken edit keeps the last good rules."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from alerts.rules.config import RulesConfig, reload_rules
from alerts.settings import AlertsSettings
from ingest.filewatch import FileChanges, poll

log = logging.getLogger(__name__)

_ALERTS = AlertsSettings.model_fields  # the settings tree: one source of defaults


class RulesWatcher:
    """Reloads the rules when the file changes and hands good ones to ``apply``.

    Args:
        path: The rules file (None: nothing to watch, the defaults stay).
        current: The rules in force.
        apply: Called with each newly loaded configuration (e.g. ``engine.use_rules``).
        interval_s: How often to look at the file (``alerts.reload_interval_s``).
    """

    def __init__(
        self,
        path: Path | None,
        current: RulesConfig,
        apply: Callable[[RulesConfig], None],
        interval_s: float = _ALERTS["reload_interval_s"].default,
    ) -> None:
        self._path = path
        self._current = current
        self._apply = apply
        self._interval_s = interval_s
        self._changes = FileChanges([] if path is None else [path])
        self.reloads = 0
        self.refused = 0

    @property
    def current(self) -> RulesConfig:
        """The rules in force."""
        return self._current

    def check(self) -> bool:
        """Reload if the file changed since the last look; returns whether new rules apply."""
        if not self._changes.changed():
            return False
        rules, problem = reload_rules(self._path, self._current)
        if problem is not None:
            self.refused += 1
            log.error("rules not reloaded, keeping the previous ones: %s", problem)
            return False
        self._current = rules
        self._apply(rules)
        self.reloads += 1
        log.info("rules reloaded from %s", self._path)
        return True

    async def run(self) -> None:
        """Look every ``interval_s`` until cancelled."""
        await poll(self.check, self._interval_s)
