"""The one leader lock on a file (SQLite deployments): the engine's and the notifier's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alerts.incidents.database import FileLock, wait_to_lead
from alerts.incidents.ports import LEADER_POLL_S
from alerts.settings import AlertsSettings
from tests.helpers import eventually


def test_one_holder_at_a_time_and_the_next_once_released(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "db.lock"), FileLock(tmp_path / "db.lock")
    assert first.try_take()
    assert first.try_take()  # holding it already
    assert not second.try_take()
    assert not second.held
    first.release()
    assert second.try_take()
    assert second.held
    second.release()


def test_a_database_in_memory_is_always_granted() -> None:
    lock = FileLock(None)
    assert lock.try_take()
    lock.release()
    assert not lock.held


async def test_waiting_leads_once_the_holder_lets_go(tmp_path: Path) -> None:
    holder, waiter = FileLock(tmp_path / "db.lock"), FileLock(tmp_path / "db.lock")
    assert holder.try_take()
    tries = 0

    def try_take() -> bool:
        nonlocal tries
        tries += 1
        return waiter.try_take()

    waiting = asyncio.create_task(
        wait_to_lead(try_take, standby="standing by", leading="leading", poll_s=0.01)
    )
    await eventually(lambda: tries >= 3, what="three refused tries")
    assert not waiting.done()
    holder.release()
    await asyncio.wait_for(waiting, 5)
    assert waiter.held
    waiter.release()


def test_the_poll_default_is_the_settings_one() -> None:
    assert AlertsSettings().leader_poll_s == LEADER_POLL_S
