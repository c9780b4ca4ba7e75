"""Login rate limiting: a bounded record of recent failures per key (username, client address).

Pure: the caller passes the time. Per process; several API processes each keep their own.
"""

from __future__ import annotations

from collections import OrderedDict, deque

_MAX_KEYS = 10_000


class LoginLimiter:
    """At most ``max_failures`` failed logins per key within ``window_s``."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.refused = 0

    def retry_after_s(self, key: str, now_s: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        failures = self._failures.get(key)
        if failures is None:
            return 0.0
        while failures and failures[0] <= now_s - self.window_s:
            failures.popleft()
        if len(failures) < self.max_failures:
            return 0.0
        return failures[0] + self.window_s - now_s

    def failed(self, key: str, now_s: float) -> None:
        """Record a failed attempt."""
        failures = self._failures.pop(key, None) or deque(maxlen=self.max_failures)
        failures.append(now_s)
        self._failures[key] = failures
        while len(self._failures) > _MAX_KEYS:  # the oldest idle keys go first
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """Forget a key's failures."""
        self._failures.pop(key, None)
