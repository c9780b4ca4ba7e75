"""Signing in and out, who am I, and administration of users and API keys."""

from __future__ import annotations

import functools
import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from dashboards.api.accounts import AccountError, Principal, Role
from dashboards.api.deps import Admin, Context, Viewer
from dashboards.api.routes import AUTH_RESPONSES, NOT_FOUND
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
from dashboards.api.views import NS, to_datetime

router = APIRouter(prefix="/api/v1", tags=["auth"])


def _me(who: Principal) -> MePublic:
    return MePublic(name=who.name, role=who.role.value, csrf_token=who.csrf_token)


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
    return MePublic(name=user.username, role=user.role.value, csrf_token=csrf)


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


@router.get("/me", summary="Who is signed in", responses=AUTH_RESPONSES)
async def me(who: Viewer) -> MePublic:
    """The principal, and the CSRF token a session's forms must send."""
    return _me(who)


# -- administration ---------------------------------------------------------------------------

admin = APIRouter(prefix="/api/v1", tags=["admin"], responses=AUTH_RESPONSES)


@admin.get("/users", summary="Users")
async def list_users(ctx: Context, _who: Admin) -> UserList:
    """Every user (never a password)."""
    found = await run_in_threadpool(ctx.accounts.list_users)
    data = [
        UserPublic(username=u.username, role=u.role.value, created=to_datetime(u.created_ns))
        for u in found
    ]
    return UserList(data=data, count=len(data))


@admin.post(
    "/users",
    summary="Add a user",
    status_code=201,
    responses={409: {"model": Problem, "description": "the name is taken"}},
)
async def add_user(ctx: Context, _who: Admin, body: UserCreate) -> UserCreated:
    """Create a user; a generated password is returned this once."""
    generated = body.password is None
    password = body.password or secrets.token_urlsafe(15)
    try:
        user = await run_in_threadpool(
            ctx.accounts.add_user, body.username, Role(body.role), password, ctx.clock_ns()
        )
    except AccountError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return UserCreated(
        username=user.username,
        role=user.role.value,
        created=to_datetime(user.created_ns),
        password=password if generated else None,
    )


Name = Annotated[str, Path(min_length=1, max_length=100)]


@admin.delete(
    "/users/{username}",
    summary="Remove a user",
    status_code=204,
    responses={**NOT_FOUND, 409: {"model": Problem, "description": "yourself or the last admin"}},
)
async def remove_user(ctx: Context, who: Admin, username: Name) -> Response:
    """Delete a user and end their sessions."""
    if username == who.name:
        return JSONResponse({"detail": "you cannot remove yourself"}, status.HTTP_409_CONFLICT)
    try:
        removed = await run_in_threadpool(
            functools.partial(ctx.accounts.remove_user, username, keep_an_admin=True)
        )
    except AccountError as exc:
        return JSONResponse({"detail": str(exc)}, status.HTTP_409_CONFLICT)
    if not removed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r}")
    return Response(status_code=204)


@admin.get("/api-keys", summary="API keys")
async def list_keys(ctx: Context, _who: Admin) -> ApiKeyList:
    """Every key's record (never a key)."""
    found = await run_in_threadpool(ctx.accounts.list_keys)
    data = [
        ApiKeyPublic(
            name=k.name,
            role=k.role.value,
            created_by=k.created_by,
            created=to_datetime(k.created_ns),
        )
        for k in found
    ]
    return ApiKeyList(data=data, count=len(data))


@admin.post(
    "/api-keys",
    summary="Create an API key",
    status_code=201,
    responses={409: {"model": Problem, "description": "the name is taken"}},
)
async def add_key(ctx: Context, who: Admin, body: ApiKeyCreate) -> ApiKeyCreated:
    """A new key, shown this once; only its hash is kept."""
    try:
        record, key = await run_in_threadpool(
            ctx.accounts.add_key, body.name, Role(body.role), who.name, ctx.clock_ns()
        )
    except AccountError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return ApiKeyCreated(
        name=record.name,
        role=record.role.value,
        created_by=record.created_by,
        created=to_datetime(record.created_ns),
        key=key,
    )


@admin.delete("/api-keys/{name}", summary="Revoke an API key", status_code=204, responses=NOT_FOUND)
async def remove_key(ctx: Context, _who: Admin, name: Name) -> Response:
    """Revoke a key at once."""
    if not await run_in_threadpool(ctx.accounts.remove_key, name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no API key {name!r}")
    return Response(status_code=204)
