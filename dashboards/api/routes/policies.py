"""Notification policy per regency: read, replace (a new version) and the history, by the
admins of a scope that reaches the regency. The deployment's file stays the default."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from starlette.concurrency import run_in_threadpool

from alerts.notify.errors import PolicyError
from alerts.notify.policy import Policy, load_policy
from alerts.notify.regency_policy import RegencyPolicy, StoredRegencyPolicy, parse_regency_policy
from dashboards.api.accounts import Principal
from dashboards.api.context import ApiContext
from dashboards.api.deps import Admin, Context, Record
from dashboards.api.routes import AUTH_RESPONSES, NOT_FOUND, bad_parameter
from dashboards.api.schemas import RegencyPolicyList, RegencyPolicyPublic
from dashboards.api.scopes import allows
from dashboards.api.views import to_datetime

router = APIRouter(
    prefix="/api/v1/policies", tags=["admin"], responses={**AUTH_RESPONSES, **NOT_FOUND}
)

RegencyName = Annotated[str, Path(min_length=1, max_length=100)]


def _regency(ctx: ApiContext, who: Principal, regency: str) -> str:
    """The regency, when the registry knows it and the caller's scope reaches it (else 404)."""
    known = regency in ctx.registry.provinces() or bool(ctx.stations_of(regency))
    if not known or not allows(ctx, who, regency):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no regency {regency!r}")
    return regency


def _public(regency: str, stored: StoredRegencyPolicy | None) -> RegencyPolicyPublic:
    if stored is None:
        return RegencyPolicyPublic(
            regency=regency, version=0, policy=None, created_by=None, created=None
        )
    return RegencyPolicyPublic(
        regency=regency,
        version=stored.version,
        policy=stored.policy,
        created_by=stored.created_by,
        created=to_datetime(stored.created_ns),
    )


@router.get("/{regency}", summary="A regency's notification policy in force")
async def get_policy(ctx: Context, who: Admin, regency: RegencyName) -> RegencyPolicyPublic:
    """Its newest version (version 0: none of its own, the deployment's file applies)."""
    regency = _regency(ctx, who, regency)
    found = await ctx.notify.regency_policies(regency)
    return _public(regency, found[0] if found else None)


@router.get("/{regency}/versions", summary="Every version of a regency's notification policy")
async def list_versions(ctx: Context, who: Admin, regency: RegencyName) -> RegencyPolicyList:
    """Newest first; versions are never changed or removed."""
    regency = _regency(ctx, who, regency)
    found = await ctx.notify.regency_policies(regency, history=True)
    data = [_public(regency, stored) for stored in found]
    return RegencyPolicyList(data=data, count=len(data))


@router.put(
    "/{regency}",
    summary="Replace a regency's notification policy (a new version)",
    responses={422: {"description": "the policy is refused, with its reason"}},
)
async def put_policy(
    ctx: Context, who: Admin, record: Record, regency: RegencyName, body: RegencyPolicy
) -> RegencyPolicyPublic:
    """Validated as the policy file is, and together with it; a broken policy is refused with
    its reason and the version in force stays."""
    regency = _regency(ctx, who, regency)
    default = await run_in_threadpool(_default_policy, ctx)
    try:
        policy = parse_regency_policy(regency, body.model_dump(by_alias=True), default)
    except PolicyError as exc:
        raise bad_parameter("body", "policy", str(exc)) from None
    stored = await ctx.notify.save_regency_policy(regency, policy, who.name, ctx.clock_ns())
    await record(
        "policy.update",
        "policy",
        regency,
        frozenset({regency}),
        {"version": stored.version},
    )
    return _public(regency, stored)


def _default_policy(ctx: ApiContext) -> Policy:
    """The deployment's policy file (an unreadable or broken file checks against none)."""
    if ctx.policy_file is None:
        return Policy()
    try:
        return load_policy(ctx.policy_file)
    except PolicyError:
        return Policy()
