"""Reaching people: link a Telegram account (one-time code), SMS numbers, delivery status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dashboards.api.deps import Admin, Context, Viewer
from dashboards.api.routes import AUTH_RESPONSES, NOT_FOUND
from dashboards.api.views import to_datetime

router = APIRouter(prefix="/api/v1", tags=["contacts"], responses=AUTH_RESPONSES)

TELEGRAM = "telegram"
SMS = "sms"
E164 = r"^\+[1-9][0-9]{6,14}$"


class LinkCodePublic(BaseModel):
    """A one-time code: send ``/link CODE`` to the bot in a private chat before it expires."""

    model_config = ConfigDict(frozen=True)

    code: str
    command: str
    expires: datetime


class PhoneRequest(BaseModel):
    """A user's phone number for SMS (E.164, ``+62…``)."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(pattern=E164)


class DeliveryPublic(BaseModel):
    """One message to one recipient on one channel, and how its delivery went."""

    model_config = ConfigDict(frozen=True)

    id: str
    message_id: str
    recipient: str
    channel: str
    status: Literal["pending", "sending", "delivered", "failed"]
    attempts: int
    created: datetime
    delivered: datetime | None
    last_error: str | None
    fallback_of: str | None
    incidents: list[int]


class DeliveryList(BaseModel):
    """Deliveries, newest first."""

    model_config = ConfigDict(frozen=True)

    data: list[DeliveryPublic]
    count: int


def _person(name: str) -> str:
    if name.startswith("key:"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an API key has no Telegram account")
    return name


@router.post(
    "/me/telegram/link-code",
    summary="A one-time code that links your Telegram account",
    status_code=201,
)
async def telegram_link_code(ctx: Context, who: Viewer) -> LinkCodePublic:
    """Shown once; only its hash is kept. Presses by the linked account act in your name."""
    now = ctx.clock_ns()
    code = await ctx.chats.issue_code(TELEGRAM, _person(who.name), now, ctx.link_code_valid_s)
    return LinkCodePublic(
        code=code,
        command=f"/link {code}",
        expires=to_datetime(now + int(ctx.link_code_valid_s * 1e9)),
    )


@router.delete("/me/telegram", summary="Unlink your Telegram account", status_code=204)
async def telegram_unlink(ctx: Context, who: Viewer) -> Response:
    """Presses from the account are refused from now on."""
    await ctx.chats.unlink(TELEGRAM, _person(who.name))
    return Response(status_code=204)


Username = Annotated[str, Path(min_length=1, max_length=100)]


@router.put(
    "/users/{username}/phone",
    summary="Set a user's number for SMS replies",
    status_code=204,
    tags=["admin"],
    responses=NOT_FOUND,
)
async def set_phone(ctx: Context, _who: Admin, username: Username, body: PhoneRequest) -> Response:
    """ "AKUI <id>" from this number acknowledges in the user's name (set by an admin only)."""
    users = await run_in_threadpool(ctx.accounts.list_users)
    if all(u.username != username for u in users):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r}")
    await ctx.chats.unlink(SMS, username)
    await ctx.chats.link(SMS, body.number, username, ctx.clock_ns())
    return Response(status_code=204)


@router.get("/deliveries", summary="Notification deliveries and their status")
async def list_deliveries(
    ctx: Context,
    _who: Viewer,
    incident: Annotated[int | None, Query(ge=1, description="only those of this incident")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    """Newest first: where each message went, whether it arrived, and the SMS fallbacks."""
    found = await ctx.notify.deliveries()
    data = []
    for delivery in reversed(found):
        alerts = delivery.payload.get("alerts", [])
        incidents = sorted({int(a["incident_id"]) for a in alerts if "incident_id" in a})
        if incident is not None and incident not in incidents:
            continue
        fallback = delivery.payload.get("fallback_of")
        data.append(
            DeliveryPublic(
                id=delivery.id,
                message_id=delivery.message_id,
                recipient=delivery.recipient,
                channel=delivery.channel,
                status=delivery.status,  # type: ignore[arg-type]
                attempts=delivery.attempts,
                created=to_datetime(delivery.created_ns),
                delivered=None
                if delivery.delivered_ns is None
                else to_datetime(delivery.delivered_ns),
                last_error=delivery.last_error,
                fallback_of=fallback if isinstance(fallback, str) else None,
                incidents=incidents,
            )
        )
        if len(data) >= limit:
            break
    return DeliveryList(data=data, count=len(data))
