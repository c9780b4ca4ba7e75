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
        self._in_flight: dict[str, int] = {}
        self.refused = 0

    def retry_after_s(self, key: str, now_s: float) -> float:
        """Seconds until ``key`` may try again; 0 when it may now.

        Attempts still being checked count as failures until they end, so a burst of parallel
        sign-ins cannot run more password checks than the limit allows.
        """
        failures = self._failures.get(key)
        in_flight = self._in_flight.get(key, 0)
        if failures is not None:
            while failures and failures[0] <= now_s - self.window_s:
                failures.popleft()
        recorded = len(failures) if failures is not None else 0
        if recorded + in_flight < self.max_failures:
            return 0.0
        if failures and recorded >= self.max_failures:
            return failures[0] + self.window_s - now_s
        return 1.0  # the attempts in flight end within a second or two

    def begin(self, key: str) -> None:
        """An attempt for ``key`` is being checked (end it with :meth:`end`)."""
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def end(self, key: str) -> None:
        """The attempt's check is over."""
        left = self._in_flight.pop(key, 1) - 1
        if left > 0:
            self._in_flight[key] = left

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
