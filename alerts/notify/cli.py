"""``siaga alerts silence``: mute known trouble (maintenance) for a while, with a reason."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import ValidationError

from alerts.cli_options import DATA_DIR, ConfigOption, platform_settings
from alerts.notify.errors import NotifyError
from alerts.pipeline.silence import Matcher, Silence

if TYPE_CHECKING:
    from alerts.notify.sqlstore import SqlNotifyStore

silence_app = typer.Typer(
    help="Silences: mute matching notifications until they expire (who, why, until when).",
    no_args_is_help=True,
)

_T = TypeVar("_T")
_MATCHER = re.compile(r"^([a-z_]+)(=~|!~|!=|=)(.*)$")


def parse_matcher(text: str) -> Matcher:
    """``station=tb-menggala``, ``kind!=no_data``, ``regency=~Kota .*`` → a matcher."""
    found = _MATCHER.match(text)
    if found is None:
        raise typer.BadParameter(f"{text!r}: expected LABEL=VALUE, LABEL!=VALUE or LABEL=~REGEX")
    name, op, value = found.groups()
    return Matcher(name=name, op=op, value=value)  # type: ignore[arg-type]


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(2)


def _run(config: Path | None, action: Callable[[SqlNotifyStore], Awaitable[_T]]) -> _T:
    from alerts.notify.sqlstore import SqlNotifyStore  # noqa: PLC0415 - SQLAlchemy is heavy
    from ingest.errors import ConfigError  # noqa: PLC0415

    settings = platform_settings(config, DATA_DIR[0], create=True)

    async def go() -> _T:
        async with SqlNotifyStore(settings.database.url) as store:
            return await action(store)

    try:
        return asyncio.run(go())
    except (ConfigError, NotifyError) as exc:
        raise _fail(str(exc)) from None


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@silence_app.command("add")
def add(
    match: Annotated[list[str], typer.Option("--match", "-m", help="LABEL=VALUE (repeatable).")],
    by: Annotated[str, typer.Option("--by", help="Who silences.")],
    comment: Annotated[str, typer.Option("--comment", help="Why (e.g. gauge maintenance).")],
    hours: Annotated[float, typer.Option(help="How long, from now.")] = 2.0,
    config: ConfigOption = None,
) -> None:
    """Silence matching notifications from now for ``--hours``."""
    now = time.time_ns()
    try:
        silence = Silence(
            matchers=[parse_matcher(m) for m in match],
            starts_ns=now,
            ends_ns=now + int(hours * 3600 * 1e9),
            created_by=by,
            comment=comment,
        )
    except ValidationError as exc:
        raise _fail(f"not a silence: {exc.errors()[0]['msg']}") from None
    stored = _run(config, lambda store: store.add_silence(silence))
    typer.echo(f"silence {stored.id} until {_when(stored.ends_ns)}")


@silence_app.command("list")
def list_silences(
    all_: Annotated[bool, typer.Option("--all", help="Include expired silences.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Silences in force (or all of them)."""
    now = None if all_ else time.time_ns()
    silences = _run(config, lambda store: store.silences(now))
    for silence in silences:
        matchers = " ".join(f"{m.name}{m.op}{m.value}" for m in silence.matchers)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "id": silence.id,
                        "matchers": [m.model_dump() for m in silence.matchers],
                        "starts": _when(silence.starts_ns),
                        "ends": _when(silence.ends_ns),
                        "created_by": silence.created_by,
                        "comment": silence.comment,
                    }
                )
            )
        else:
            typer.echo(
                f"{silence.id}\t{matchers}\tuntil {_when(silence.ends_ns)}\t"
                f"{silence.created_by}: {silence.comment}"
            )


@silence_app.command("expire")
def expire(
    silence_id: Annotated[int, typer.Argument(metavar="ID")],
    config: ConfigOption = None,
) -> None:
    """End a silence now."""
    if not _run(config, lambda store: store.expire_silence(silence_id, time.time_ns())):
        raise _fail(f"no silence {silence_id}")
    typer.echo(f"silence {silence_id} expired")
