"""The audit log, read by the admins of a scope (appending is the other routes' business)."""

from __future__ import annotations

import functools
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from dashboards.api.deps import Admin, Context
from dashboards.api.routes import AUTH_RESPONSES
from dashboards.api.schemas import AuditList, AuditPublic
from dashboards.api.scopes import reach
from dashboards.api.views import to_datetime

router = APIRouter(prefix="/api/v1", tags=["admin"], responses=AUTH_RESPONSES)


@router.get("/audit", summary="Who changed what, when and from where")
async def read_audit(
    ctx: Context,
    who: Admin,
    target_kind: Literal["incident", "silence", "user", "api_key", "policy"] | None = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="ids below this")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditList:
    """Changes to incidents, silences, users, API keys and policies of the admin's scope,
    newest first. Nothing here can be edited or deleted through Siaga."""
    found = await run_in_threadpool(
        functools.partial(
            ctx.audit_log().read,
            regencies=reach(ctx, who),
            province=who.scope.province,
            target_kind=target_kind,
            target=target,
            before_id=before,
            limit=limit,
        )
    )
    data = [
        AuditPublic(
            id=e.id,
            at=to_datetime(e.at_ns),
            actor=e.actor,
            action=e.action,
            target_kind=e.target_kind,  # type: ignore[arg-type]
            target=e.target,
            regency=e.regency,
            province=e.province,
            client_ip=e.client_ip,
            detail=dict(e.detail),
        )
        for e in found
    ]
    return AuditList(data=data, count=len(data))
