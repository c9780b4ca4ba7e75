"""A small process supervisor: start parts in order, restart the ones that die, stop them all.

``siaga up`` runs every part of the platform (broker, database, ingest worker, alert engine, web
server, the demo flood) as a child process. Each child:

- is started in order and must become *ready* (its probe answers) within its time limit, or the
  supervisor names the part and why (the tail of its log) and stops everything it started;
- dies with the supervisor, however the supervisor dies (``PR_SET_PDEATHSIG``), so no orphan is
  left even after ``kill -9``;
- is restarted with exponential backoff when it dies later, and the restart is reported;
- is stopped in reverse order with SIGTERM (the worker and the engine flush and acknowledge on
  SIGTERM), then SIGKILL after a grace period.

The restart decision is the pure :class:`RestartPolicy`; the rest only moves processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.retry import RetryPolicy
from ops.errors import ServerError
from ops.servers import _die_with_parent

log = logging.getLogger(__name__)


class PartFailedError(ServerError):
    """A part could not start; the message names it and gives the reason."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"{part} could not start: {reason}")
        self.part = part
        self.reason = reason


PART_BACKOFF = RetryPolicy(initial_s=1.0, max_s=30.0, jitter="none", deadline_s=None)
"""1 s doubling to 30 s, no jitter: one supervisor restarting its own children has no crowd to
spread."""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When to restart a part that died: the backoff's delays, reset after a stable run.

    Attributes:
        backoff: The delays between restarts.
        stable_s: A run at least this long resets the backoff (the part was healthy).
    """

    backoff: RetryPolicy = PART_BACKOFF
    stable_s: float = 60.0

    def delay_s(self, consecutive_failures: int) -> float:
        """The wait before restart number ``consecutive_failures`` (1 for the first)."""
        return self.backoff.delay_s(consecutive_failures)

    def failures_after(self, previous_failures: int, ran_for_s: float) -> int:
        """The consecutive-failure count after a run of ``ran_for_s`` ended in a death."""
        return 1 if ran_for_s >= self.stable_s else previous_failures + 1


@dataclass(frozen=True)
class Part:
    """One child process of the platform.

    Attributes:
        name: How people call it (``broker``, ``ingest``, ``alerts``, ``web``, ``demo``).
        argv: The command.
        env: Environment variables added to the supervisor's own.
        ready: Probe that returns True once the part serves; None: ready once it has run
            ``settle_s`` without exiting.
        ready_timeout_s: How long the part may take to become ready.
        restart: Restart it when it dies (False for a part that runs to completion).
        stop_timeout_s: How long SIGTERM may take before SIGKILL.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 30.0
    settle_s: float = 2.0
    restart: bool = True
    stop_timeout_s: float = 30.0


@dataclass
class _Child:
    part: Part
    process: asyncio.subprocess.Process
    started: float
    failures: int = 0
    restarts: int = 0


Reporter = Callable[[str], None]


class Supervisor:
    """Starts parts, keeps them running, stops them.

    Args:
        log_dir: Each part's standard output and error go to ``<log_dir>/<name>.log``.
        policy: When to restart a part that died.
        report: Called with one line for people whenever something happens to a part.
        clock: Monotonic clock.
    """

    def __init__(
        self,
        log_dir: Path,
        policy: RestartPolicy | None = None,
        report: Reporter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log_dir = log_dir
        self._policy = policy or RestartPolicy()
        self._report = report or (lambda line: log.info("%s", line))
        self._clock = clock
        self._children: dict[str, _Child] = {}
        self._order: list[str] = []
        self._stopping = False
        self.finished: dict[str, int] = {}
        """Parts that ran to completion (``restart=False``) and their exit codes."""

    def log_path(self, name: str) -> Path:
        """Where a part's output goes."""
        return self._log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The process id of a running part."""
        child = self._children.get(name)
        return None if child is None or child.process.returncode is not None else child.process.pid

    def restarts(self, name: str) -> int:
        """How often a part was restarted."""
        child = self._children.get(name)
        return 0 if child is None else child.restarts

    async def start(self, part: Part) -> None:
        """Start a part and wait until it is ready.

        Raises:
            PartFailedError: It exited, or was not ready in time; the reason quotes its log.
        """
        process = await self._spawn(part)
        self._children[part.name] = _Child(part, process, self._clock())
        self._order.append(part.name)
        await self._wait_ready(part, process)
        self._report(f"started {part.name} (pid {process.pid})")

    async def _spawn(self, part: Part) -> asyncio.subprocess.Process:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(part.name).open("ab") as output:
            try:
                return await asyncio.create_subprocess_exec(
                    *part.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=asyncio.subprocess.STDOUT,
                    env={**os.environ, **part.env},
                    start_new_session=True,  # Ctrl-C reaches the supervisor, which stops parts
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise PartFailedError(part.name, f"{part.argv[0]}: {exc.strerror}") from None

    async def _wait_ready(self, part: Part, process: asyncio.subprocess.Process) -> None:
        deadline = self._clock() + part.ready_timeout_s
        delay_s = 0.05
        while True:
            if process.returncode is not None:
                raise PartFailedError(
                    part.name, f"exited with status {process.returncode}\n{self.tail(part.name)}"
                )
            if part.ready is None:
                try:
                    await asyncio.wait_for(process.wait(), part.settle_s)
                except TimeoutError:
                    return
                continue
            ready = await asyncio.to_thread(part.ready)
            if ready:
                return
            if self._clock() > deadline:
                raise PartFailedError(
                    part.name,
                    f"not ready after {part.ready_timeout_s:.0f} s\n{self.tail(part.name)}",
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), delay_s)
            delay_s = min(delay_s * 2, 0.5)

    def tail(self, name: str, lines: int = 15) -> str:
        """The last lines of a part's log."""
        try:
            text = self.log_path(name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:])

    async def watch(self) -> None:
        """Restart parts that die, with backoff, until cancelled.

        It may be run again after it failed: parts that ran to completion stay finished, and a
        part that died meanwhile is restarted.
        """
        async with asyncio.TaskGroup() as group:
            for name in [n for n in self._order if n not in self.finished]:
                group.create_task(self._watch_one(name), name=f"siaga.up.watch.{name}")

    async def _watch_one(self, name: str) -> None:
        while True:
            child = self._children[name]
            code = await child.process.wait()
            if self._stopping:
                return
            if not child.part.restart:
                self.finished[name] = code
                self._report(f"{name} finished (exit status {code})")
                return
            ran_for_s = self._clock() - child.started
            child.failures = self._policy.failures_after(child.failures, ran_for_s)
            delay_s = self._policy.delay_s(child.failures)
            self._report(
                f"{name} died (exit status {code}) after {ran_for_s:.0f} s; "
                f"restarting in {delay_s:.0f} s. Its log: {self.log_path(name)}"
            )
            await asyncio.sleep(delay_s)
            if self._stopping:
                return
            try:
                child.process = await self._spawn(child.part)
            except PartFailedError as exc:
                self._report(str(exc))
                continue
            child.started = self._clock()
            child.restarts += 1
            self._report(f"restarted {name} (pid {child.process.pid})")

    async def stop_all(self) -> None:
        """Stop every part in reverse start order: SIGTERM, then SIGKILL after its grace."""
        self._stopping = True
        for name in reversed(self._order):
            child = self._children[name]
            process = child.process
            if process.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), child.part.stop_timeout_s)
            except TimeoutError:
                self._report(f"{name} did not stop in {child.part.stop_timeout_s:.0f} s; killed")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            self._report(f"stopped {name}")
