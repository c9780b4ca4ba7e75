"""Request dependencies as ``Annotated`` aliases: the context, who is asking, and their role.

Authentication: an API key (``Authorization: Bearer sk_...`` or ``X-API-Key``) or the session
cookie. A session request that changes something must repeat its CSRF token (header
``X-CSRF-Token`` or form field ``csrf_token``); API keys are not sent by browsers on their own,
so they need none.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from dashboards.api.accounts import Principal, Role
from dashboards.api.audit import Change, entries
from dashboards.api.context import ApiContext
from dashboards.web.i18n import COOKIE as LANGUAGE_COOKIE
from dashboards.web.i18n import Language, pick_language
from devices.scopes import Scope

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"

# Declared for the OpenAPI document; the checks themselves are in :func:`principal`.
bearer_scheme = HTTPBearer(auto_error=False, description="an API key: Bearer sk_...")
key_header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)
cookie_scheme = APIKeyCookie(name="siaga_session", auto_error=False)


def context(request: Request) -> ApiContext:
    """The app's context."""
    found: ApiContext = request.app.state.siaga
    return found


Context = Annotated[ApiContext, Depends(context)]


def request_language(
    request: Request,
    lang: Annotated[
        Literal["id", "en"] | None,
        Query(description="the language of texts for people (default: cookie, else id)"),
    ] = None,
) -> Language:
    """The language of the texts in a response: ``?lang=``, the UI's cookie, else Indonesian."""
    return pick_language(lang, request.cookies.get(LANGUAGE_COOKIE))


RequestLanguage = Annotated[Language, Depends(request_language)]


def _unauthenticated(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


async def _csrf_form_token(request: Request) -> str | None:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


async def authenticate(request: Request, ctx: ApiContext, key: str | None) -> Principal:
    """Who is asking, by API key when one is given, else by the session cookie.

    Raises:
        HTTPException: 401 without valid credentials; 403 for a session request that changes
            something without its CSRF token.
    """
    if key is not None:
        found = await run_in_threadpool(ctx.accounts.key_principal, key)
        if found is None:
            raise _unauthenticated("unknown API key")
        return found
    cookie = request.cookies.get(ctx.settings.cookie_name)
    if cookie is None:
        raise _unauthenticated("sign in or give an API key")
    found = await run_in_threadpool(ctx.accounts.session_principal, cookie, ctx.clock_ns())
    if found is None:
        raise _unauthenticated("the session has expired; sign in again")
    if request.method not in _SAFE_METHODS:
        offered = request.headers.get(CSRF_HEADER) or await _csrf_form_token(request)
        if not offered or not hmac.compare_digest(offered, found.csrf_token or ""):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    return found


async def principal(
    request: Request,
    ctx: Context,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    key_header: Annotated[str | None, Depends(key_header_scheme)],
    _cookie: Annotated[str | None, Depends(cookie_scheme)],
) -> Principal:
    """Who is asking (see :func:`authenticate`)."""
    return await authenticate(request, ctx, bearer.credentials if bearer else key_header)


def require(role: Role) -> object:
    """A dependency that lets through principals of ``role`` or a stronger one."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role.rank < role.rank:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {role.value} role")
        return who

    return Depends(check)


class Recorder:
    """Records the request's changes in the audit log: who (the principal), from where (the
    connecting address), when (the API's clock)."""

    def __init__(self, ctx: ApiContext, who: Principal, client_ip: str) -> None:
        self._ctx = ctx
        self._who = who
        self._client_ip = client_ip

    async def __call__(
        self,
        action: str,
        target_kind: str,
        target: str,
        concerns: Scope | frozenset[str] | None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append the change (see :func:`dashboards.api.audit.entries`)."""
        change = Change(
            concerns, self._who.name, action, target_kind, target, self._client_ip, detail or {}
        )
        await audit_change(self._ctx, change)


async def audit_change(ctx: ApiContext, change: Change) -> None:
    """Append one change to the audit log, at the API's clock."""
    await run_in_threadpool(ctx.audit_log().add, entries(change, ctx.clock_ns()))


def recorder(
    request: Request, ctx: Context, who: Annotated[Principal, Depends(principal)]
) -> Recorder:
    """The audit log's recorder for this request."""
    return Recorder(ctx, who, request.client.host if request.client else "?")


Record = Annotated[Recorder, Depends(recorder)]

Viewer = Annotated[Principal, require(Role.VIEWER)]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Admin = Annotated[Principal, require(Role.ADMIN)]
