"""Signing in and out, who am I, and administration of users and API keys."""

from __future__ import annotations

import functools
import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from dashboards.api.accounts import AccountError, ApiKey, Principal, Role, User
from dashboards.api.context import ApiContext
from dashboards.api.deps import Admin, Context, Record, Viewer
from dashboards.api.routes import AUTH_RESPONSES, NOT_FOUND, bad_parameter
from dashboards.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyPublic,
    LoginRequest,
    MePublic,
    Problem,
    UserCreate,
    UserCreated,
    UserList,
    UserPublic,
)
from dashboards.api.scopes import may_manage, scope_fields
from dashboards.api.views import NS, to_datetime
from devices.scopes import Scope, ScopeError

router = APIRouter(prefix="/api/v1", tags=["auth"])


def _me(who: Principal) -> MePublic:
    return MePublic(
        name=who.name,
        role=who.role.value,
        csrf_token=who.csrf_token,
        **scope_fields(who.scope).model_dump(),
    )


async def _login_request(request: Request) -> LoginRequest:
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            return LoginRequest.model_validate_json(await request.body())
        form = await request.form()
        return LoginRequest.model_validate({k: form.get(k) for k in ("username", "password")})
    except ValidationError as exc:
        errors = [
            {"loc": ["body", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        raise HTTPException(422, errors) from None


@router.post(
    "/login",
    summary="Sign in: sets the session cookie",
    responses={
        401: {"model": Problem, "description": "wrong username or password"},
        429: {"model": Problem, "description": "too many failed attempts"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": LoginRequest.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": LoginRequest.model_json_schema()},
            },
        }
    },
)
async def login(ctx: Context, request: Request, response: Response) -> MePublic:
    """Check the password (rate-limited per username and address) and open a session."""
    credentials = await _login_request(request)
    now_s = ctx.clock_ns() / NS
    address = request.client.host if request.client else "?"
    keys = (f"user:{credentials.username}", f"addr:{address}")
    wait_s = max(ctx.limiter.retry_after_s(key, now_s) for key in keys)
    if wait_s > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed sign-ins; try again later",
            headers={"Retry-After": str(int(wait_s) + 1)},
        )
    for key in keys:
        ctx.limiter.begin(key)
    try:
        user = await run_in_threadpool(
            ctx.accounts.authenticate, credentials.username, credentials.password
        )
    finally:
        for key in keys:
            ctx.limiter.end(key)
    if user is None:
        for key in keys:
            ctx.limiter.failed(key, now_s)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    # Only the user's own count is forgiven: an address that signs in to one account it holds
    # must not reset its failures against the others.
    ctx.limiter.succeeded(keys[0])
    # A session id the browser held before signing in is never reused (session fixation).
    previous = request.cookies.get(ctx.settings.cookie_name)
    if previous is not None:
        await run_in_threadpool(ctx.accounts.close_session, previous)
    token, csrf = await run_in_threadpool(
        ctx.accounts.open_session, user, ctx.clock_ns(), ctx.settings.session_ttl_s
    )
    response.set_cookie(
        ctx.settings.cookie_name,
        token,
        max_age=ctx.settings.session_ttl_s,
        httponly=True,
        secure=ctx.settings.cookie_secure,
        samesite=ctx.settings.cookie_samesite,
        path="/",
    )
    return _me(Principal(user.username, user.role, csrf, user.scope))


@router.post("/logout", summary="Sign out", status_code=204, responses=AUTH_RESPONSES)
async def logout(ctx: Context, request: Request, _who: Viewer) -> Response:
    """End the session (API keys have none)."""
    cookie = request.cookies.get(ctx.settings.cookie_name)
    if cookie is not None:
        await run_in_threadpool(ctx.accounts.close_session, cookie)
    response = Response(status_code=204)
    response.delete_cookie(
        ctx.settings.cookie_name,
        path="/",
        httponly=True,
        secure=ctx.settings.cookie_secure,
        samesite=ctx.settings.cookie_samesite,
    )
    return response


@router.get("/me", summary="Who is signed in, and their scope", responses=AUTH_RESPONSES)
async def me(who: Viewer) -> MePublic:
    """The principal, their scope (``regencies``, ``province``; neither: the whole
    deployment), and the CSRF token a session's forms must send."""
    return _me(who)


# -- administration ---------------------------------------------------------------------------

admin = APIRouter(prefix="/api/v1", tags=["admin"], responses=AUTH_RESPONSES)


def _user_public(user: User) -> UserPublic:
    return UserPublic(
        username=user.username,
        role=user.role.value,
        created=to_datetime(user.created_ns),
        **scope_fields(user.scope).model_dump(),
    )


def _given_scope(
    ctx: ApiContext, who: Principal, regencies: list[str], province: str | None
) -> Scope:
    """The scope a request gives a new user or key, when the registry knows it and the admin
    may give it.

    Raises:
        HTTPException: 422 for names the registry does not know; 403 for a scope reaching
            outside the admin's own (a regency admin cannot make a deployment-wide user).
    """
    try:
        scope = Scope.of(regencies, province).check(
            ctx.registry.provinces(), (s.regency for s in ctx.registry.stations())
        )
    except ScopeError as exc:
        raise bad_parameter("body", "province" if province else "regencies", str(exc)) from None
    if not may_manage(ctx, who, scope):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"you may only give scopes inside yours ({who.scope.describe()})",
        )
    return scope


@admin.get("/users", summary="Users")
async def list_users(ctx: Context, who: Admin) -> UserList:
    """The users inside the admin's scope (never a password)."""
    found = await run_in_threadpool(ctx.accounts.list_users)
    data = [_user_public(u) for u in found if may_manage(ctx, who, u.scope)]
    return UserList(data=data, count=len(data))


@admin.post(
    "/users",
    summary="Add a user",
    status_code=201,
    responses={409: {"model": Problem, "description": "the name is taken"}},
)
async def add_user(ctx: Context, who: Admin, record: Record, body: UserCreate) -> UserCreated:
    """Create a user of ``regencies`` or a ``province`` (neither: the whole deployment), inside
    the admin's own scope; a generated password is returned this once."""
    scope = _given_scope(ctx, who, body.regencies, body.province)
    generated = body.password is None
    password = body.password or secrets.token_urlsafe(15)
    try:
        user = await run_in_threadpool(
            ctx.accounts.add_user, body.username, Role(body.role), password, ctx.clock_ns(), scope
        )
    except AccountError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    await record("user.add", "user", user.username, scope, {"role": user.role.value})
    return UserCreated(**_user_public(user).model_dump(), password=password if generated else None)


Name = Annotated[str, Path(min_length=1, max_length=100)]


@admin.delete(
    "/users/{username}",
    summary="Remove a user",
    status_code=204,
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "yourself or the last admin"}},
)
async def remove_user(ctx: Context, who: Admin, record: Record, username: Name) -> Response:
    """Delete a user and end their sessions."""
    if username == who.name:
        return JSONResponse({"detail": "you cannot remove yourself"}, status.HTTP_409_CONFLICT)
    found = await run_in_threadpool(ctx.accounts.get_user, username)
    if found is None or not may_manage(ctx, who, found.scope):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r}")
    try:
        removed = await run_in_threadpool(
            functools.partial(ctx.accounts.remove_user, username, keep_an_admin=True)
        )
    except AccountError as exc:
        return JSONResponse({"detail": str(exc)}, status.HTTP_409_CONFLICT)
    if not removed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r}")
    await record("user.remove", "user", username, found.scope, {"role": found.role.value})
    return Response(status_code=204)


def _key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        name=key.name,
        role=key.role.value,
        created_by=key.created_by,
        created=to_datetime(key.created_ns),
        **scope_fields(key.scope).model_dump(),
    )


@admin.get("/api-keys", summary="API keys")
async def list_keys(ctx: Context, who: Admin) -> ApiKeyList:
    """The records of the keys inside the admin's scope (never a key)."""
    found = await run_in_threadpool(ctx.accounts.list_keys)
    data = [_key_public(k) for k in found if may_manage(ctx, who, k.scope)]
    return ApiKeyList(data=data, count=len(data))


@admin.post(
    "/api-keys",
    summary="Create an API key",
    status_code=201,
    responses={409: {"model": Problem, "description": "the name is taken"}},
)
async def add_key(ctx: Context, who: Admin, record: Record, body: ApiKeyCreate) -> ApiKeyCreated:
    """A new key of ``regencies`` or a ``province`` (neither: the whole deployment), inside the
    admin's own scope, shown this once; only its hash is kept."""
    scope = _given_scope(ctx, who, body.regencies, body.province)
    try:
        stored, key = await run_in_threadpool(
            ctx.accounts.add_key, body.name, Role(body.role), who.name, ctx.clock_ns(), scope
        )
    except AccountError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    await record("api_key.add", "api_key", stored.name, scope, {"role": stored.role.value})
    return ApiKeyCreated(**_key_public(stored).model_dump(), key=key)


@admin.delete("/api-keys/{name}", summary="Revoke an API key", status_code=204, responses=NOT_FOUND)
async def remove_key(ctx: Context, who: Admin, record: Record, name: Name) -> Response:
    """Revoke a key (of the admin's scope) at once."""
    found = next(
        (k for k in await run_in_threadpool(ctx.accounts.list_keys) if k.name == name), None
    )
    if found is None or not may_manage(ctx, who, found.scope):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no API key {name!r}")
    if not await run_in_threadpool(ctx.accounts.remove_key, name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no API key {name!r}")
    await record("api_key.remove", "api_key", name, found.scope, {"role": found.role.value})
    return Response(status_code=204)
