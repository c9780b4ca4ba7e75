"""Incidents: active and history, acknowledge, assign; silences; one-click acknowledgement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from alerts.incidents.records import IncidentFilter
from alerts.model import EventKind, Incident
from alerts.notify.acklink import AckLinkError, verify_ack
from alerts.pipeline.silence import Matcher, Silence
from dashboards.api.accounts import Principal
from dashboards.api.audit import Change
from dashboards.api.context import ApiContext
from dashboards.api.deps import (
    Context,
    Operator,
    Record,
    Recorder,
    RequestLanguage,
    Viewer,
    audit_change,
)
from dashboards.api.routes import AUTH_RESPONSES, NOT_FOUND, bad_parameter, time_ns
from dashboards.api.schemas import (
    ONE_LINE,
    AckRequest,
    AssignRequest,
    BulkAckRequest,
    IncidentList,
    IncidentPublic,
    LevelName,
    SilenceCreate,
    SilenceList,
    SilencePublic,
)
from dashboards.api.scopes import (
    incident_or_404,
    incident_regency,
    matcher_in_scope,
    reach,
    silence_regencies,
    silence_visible,
)
from dashboards.api.views import NS, ack_view, incident_public, silence_public
from dashboards.web.i18n import Language, strings
from devices.levels import Level

router = APIRouter(prefix="/api/v1", tags=["incidents"])

IncidentId = Annotated[int, Path(ge=1, le=2**62)]
BULK_ACK_MAX = 1000


@router.get("/incidents", summary="Incidents, active or all", responses=AUTH_RESPONSES)
async def list_incidents(
    ctx: Context,
    who: Viewer,
    language: RequestLanguage,
    active: Annotated[bool, Query(description="only pending and firing incidents")] = False,
    regency: Annotated[str | None, Query(max_length=200)] = None,
    station: Annotated[str | None, Query(max_length=200)] = None,
    kind: EventKind | None = None,
    level: LevelName | None = None,
    since: Annotated[datetime | None, Query(description="updated at or after")] = None,
    until: Annotated[datetime | None, Query(description="opened before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> IncidentList:
    """The incidents of the caller's scope, newest update first."""
    since_ns = time_ns("query", "since", since, None)
    until_ns = time_ns("query", "until", until, None)
    wanted = IncidentFilter(
        regencies=reach(ctx, who),
        active_only=active,
        regency=regency,
        station=station,
        kind=kind,
        severity=Level[level] if level is not None else None,
        since_ns=since_ns,
        until_ns=until_ns,
        limit=limit,
        offset=offset,
    )
    found = await ctx.incidents.list(wanted)
    data = [
        incident_public(i, ctx.schemes, registry=ctx.registry, language=language) for i in found
    ]
    return IncidentList(data=data, count=len(data))


def _concerns(incident: Incident) -> frozenset[str] | None:
    regency = incident_regency(incident)
    return None if regency is None else frozenset({regency})


async def _acknowledge(
    ctx: ApiContext, who: Principal, record: Recorder, incident_id: int, comment: str, at_ns: int
) -> Incident:
    """Acknowledge one incident as ``who`` and record it in the audit log."""
    incident = await ctx.incidents.acknowledge(
        incident_id, by=who.name, comment=comment, at_ns=at_ns
    )
    await record(
        "incident.acknowledge",
        "incident",
        str(incident_id),
        _concerns(incident),
        {"comment": comment},
    )
    return incident


async def _existing(
    ctx: ApiContext, who: Principal, incident_id: int, language: Language = "id"
) -> IncidentPublic:
    incident = await incident_or_404(ctx, who, incident_id)
    return incident_public(incident, ctx.schemes, registry=ctx.registry, language=language)


@router.get(
    "/incidents/{incident_id}",
    summary="One incident with its transitions",
    responses=AUTH_RESPONSES | NOT_FOUND,
)
async def get_incident(
    ctx: Context, who: Viewer, incident_id: IncidentId, language: RequestLanguage
) -> IncidentPublic:
    """One incident (of the caller's scope)."""
    return await _existing(ctx, who, incident_id, language)


@router.post(
    "/incidents/{incident_id}/ack",
    summary="Acknowledge an incident",
    responses=AUTH_RESPONSES | NOT_FOUND,
)
async def acknowledge(
    ctx: Context,
    who: Operator,
    record: Record,
    incident_id: IncidentId,
    body: AckRequest,
    language: RequestLanguage,
) -> IncidentPublic:
    """Record that ``who`` has seen it (with a comment)."""
    await _existing(ctx, who, incident_id)
    incident = await _acknowledge(ctx, who, record, incident_id, body.comment, ctx.clock_ns())
    return incident_public(incident, ctx.schemes, registry=ctx.registry, language=language)


@router.post(
    "/incidents/acknowledge",
    summary="Acknowledge every active incident of a station or a regency",
    responses=AUTH_RESPONSES,
)
async def acknowledge_all(
    ctx: Context, who: Operator, record: Record, body: BulkAckRequest, language: RequestLanguage
) -> IncidentList:
    """One acknowledgement for everything active at a station or in a regency (both: both),
    inside the caller's scope.

    Incidents acknowledged already keep their acknowledgement; the answer lists the ones this
    request acknowledged. At most :data:`BULK_ACK_MAX` at once (the oldest may need a second
    request).
    """
    if body.station is None and body.regency is None:
        raise bad_parameter("body", "station", "name a station or a regency")
    found = await ctx.incidents.list(
        IncidentFilter(
            regencies=reach(ctx, who),
            station=body.station,
            regency=body.regency,
            limit=BULK_ACK_MAX,
        )
    )
    at_ns = ctx.clock_ns()
    done = []
    for found_one in found:
        if found_one.acknowledged is not None:
            continue
        done.append(await _acknowledge(ctx, who, record, found_one.id, body.comment, at_ns))
    data = [incident_public(i, ctx.schemes, registry=ctx.registry, language=language) for i in done]
    return IncidentList(data=data, count=len(data))


@router.post(
    "/incidents/{incident_id}/assign",
    summary="Assign an incident",
    responses=AUTH_RESPONSES | NOT_FOUND,
)
async def assign(
    ctx: Context,
    who: Operator,
    record: Record,
    incident_id: IncidentId,
    body: AssignRequest,
    language: RequestLanguage,
) -> IncidentPublic:
    """Give it to someone."""
    await _existing(ctx, who, incident_id)
    incident = await ctx.incidents.assign(incident_id, assignee=body.assignee, at_ns=ctx.clock_ns())
    await record(
        "incident.assign",
        "incident",
        str(incident_id),
        _concerns(incident),
        {"assignee": body.assignee},
    )
    return incident_public(incident, ctx.schemes, registry=ctx.registry, language=language)


@router.get("/silences", summary="Silences", responses=AUTH_RESPONSES)
async def list_silences(
    ctx: Context,
    who: Viewer,
    active: Annotated[bool, Query(description="only silences not yet ended")] = True,
) -> SilenceList:
    """The silences of the caller's scope, newest first."""
    found = await ctx.notify.silences(ctx.clock_ns() if active else None)
    found = [s for s in found if silence_visible(ctx, who, s)]
    found = sorted(found, key=lambda s: (s.starts_ns, s.id), reverse=True)
    return SilenceList(data=[silence_public(s) for s in found], count=len(found))


@router.post(
    "/silences",
    summary="Silence notifications",
    status_code=status.HTTP_201_CREATED,
    responses=AUTH_RESPONSES,
)
async def add_silence(
    ctx: Context, who: Operator, record: Record, body: SilenceCreate
) -> SilencePublic:
    """Hold notifications matching every matcher from ``starts`` to ``ends``.

    A silence made by someone of some regencies or a province mutes only their regencies'
    notifications, whatever its matchers say.
    """
    starts_ns = time_ns("body", "starts", body.starts, ctx.clock_ns()) or 0
    ends_ns = time_ns("body", "ends", body.ends, starts_ns + body.duration_min * 60 * NS) or 0
    if ends_ns <= starts_ns:
        raise bad_parameter("body", "ends", "ends must be after starts")
    for matcher in body.matchers:
        if matcher.op == "=" and not matcher_in_scope(ctx, who, matcher.name, matcher.value):
            raise bad_parameter(
                "body", "matchers", f"no {matcher.name} {matcher.value!r} in your scope"
            )
    try:
        silence = Silence(
            matchers=[Matcher(name=m.name, value=m.value, op=m.op) for m in body.matchers],
            starts_ns=starts_ns,
            ends_ns=ends_ns,
            created_by=who.name,
            comment=body.comment,
            regencies=silence_regencies(ctx, who),
        )
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise bad_parameter("body", "matchers", message) from None
    stored = await ctx.notify.add_silence(silence)
    await record(
        "silence.add",
        "silence",
        str(stored.id),
        stored.regencies,
        {"matchers": [m.model_dump() for m in stored.matchers], "comment": stored.comment},
    )
    return silence_public(stored)


@router.delete(
    "/silences/{silence_id}",
    summary="End a silence now",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=AUTH_RESPONSES | NOT_FOUND,
)
async def expire_silence(
    ctx: Context,
    who: Operator,
    record: Record,
    silence_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    """Ends the silence (of the caller's scope) at once (it stays in the history)."""
    known = await ctx.notify.silences(None)
    found = next((s for s in known if s.id == silence_id), None)
    if found is None or not silence_visible(ctx, who, found):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no silence {silence_id}")
    if not await ctx.notify.expire_silence(silence_id, ctx.clock_ns()):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no silence {silence_id}")
    await record("silence.expire", "silence", str(silence_id), found.regencies)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- signed one-click links -------------------------------------------------------------------
# The pages are templates (dashboards/web/templates/ack.html) in the reader's language.


async def _audit_link(ctx: ApiContext, request: Request, incident: Incident, by: str) -> None:
    """An acknowledgement through a signed link, in the audit log (``link:<name>``: the name
    the page was given, which nobody signed in to prove)."""
    address = request.client.host if request.client else "?"
    change = Change(
        _concerns(incident),
        f"link:{by}",
        "incident.acknowledge",
        "incident",
        str(incident.id),
        address,
        {"comment": "via link"},
    )
    await audit_change(ctx, change)


_LINK_STATUS = {"forged": 404, "expired": 410}
_LINK_WORDS = {"forged": "ack.invalid", "expired": "ack.expired"}


def _ack_page(
    request: Request,
    ctx: ApiContext,
    language: Language,
    *,
    state: str = "message",
    incident: Incident | None = None,
    message_key: str = "",
    status_code: int = 200,
    **context: object,
) -> Response:
    # dashboards.web imports the API's guard: importing it at the top would be a cycle.
    from dashboards.web import render_page  # noqa: PLC0415

    words = strings(language)
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"])
    return render_page(
        request,
        "ack.html",
        "ack.title",
        status_code,
        state=state,
        incident=None if incident is None else ack_view(incident, ctx.registry, language),
        message=words[message_key].format(**context) if message_key else "",
        query=query,
        **context,
    )


# ``{api.public_url}/api/v1/incidents/{id}/ack?exp=&sig=`` (alerts/notify/acklink.py) names no
# one: the page asks who acknowledges, and each link works once (its signature is recorded).

_Expiry = Annotated[int, Query(ge=0, le=2**40, description="expiry, Unix seconds")]
_Signature = Annotated[str, Query(pattern="^[0-9a-f]{64}$", description="HMAC-SHA256, hex")]


async def _linked_incident(
    request: Request, ctx: ApiContext, language: Language, incident_id: int, exp: int, sig: str
) -> tuple[Incident | None, Response | None]:
    try:
        verify_ack(ctx.secret_key, incident_id, exp, sig, ctx.clock_ns() / NS)
    except AckLinkError as exc:
        return None, _ack_page(
            request,
            ctx,
            language,
            message_key=_LINK_WORDS[exc.reason],
            status_code=_LINK_STATUS[exc.reason],
        )
    incident = await ctx.incidents.get(incident_id)
    if incident is None:
        return None, _ack_page(request, ctx, language, message_key="ack.not_found", status_code=404)
    return incident, None


@router.get(
    "/incidents/{incident_id}/ack",
    summary="The page behind a notification's acknowledgement link",
    response_class=HTMLResponse,
    tags=["links"],
    responses={404: {"description": "not a genuine link"}, 410: {"description": "expired"}},
)
async def notify_link_page(
    request: Request,
    ctx: Context,
    language: RequestLanguage,
    incident_id: IncidentId,
    exp: _Expiry,
    sig: _Signature,
) -> Response:
    """Shows the incident and asks who acknowledges; fetching it changes nothing."""
    incident, refusal = await _linked_incident(request, ctx, language, incident_id, exp, sig)
    if refusal is not None or incident is None:
        return refusal or _ack_page(request, ctx, language, status_code=404)
    return _ack_page(
        request,
        ctx,
        language,
        state="form",
        incident=incident,
        action=f"ack-link?{urlencode({'exp': exp, 'sig': sig, 'lang': language})}",
    )


@router.post(
    "/incidents/{incident_id}/ack-link",
    summary="Acknowledge through a notification's link (single use)",
    response_class=HTMLResponse,
    tags=["links"],
    responses={
        404: {"description": "not a genuine link"},
        409: {"description": "used already"},
        410: {"description": "expired"},
    },
)
async def notify_link_use(
    request: Request,
    ctx: Context,
    language: RequestLanguage,
    incident_id: IncidentId,
    exp: _Expiry,
    sig: _Signature,
    by: Annotated[str, Form(min_length=1, max_length=200, pattern=ONE_LINE)],
) -> Response:
    """Acknowledges in the name given on the page, once per link."""
    incident, refusal = await _linked_incident(request, ctx, language, incident_id, exp, sig)
    if refusal is not None or incident is None:
        return refusal or _ack_page(request, ctx, language, status_code=404)
    now_ns = ctx.clock_ns()
    first_use = await run_in_threadpool(
        ctx.accounts.use_ack_nonce, f"n:{sig[:60]}", incident_id, by, now_ns
    )
    if not first_use:
        return _ack_page(request, ctx, language, message_key="ack.used", status_code=409)
    incident = await ctx.incidents.acknowledge(incident_id, by=by, comment="via link", at_ns=now_ns)
    await _audit_link(ctx, request, incident, by)
    return _ack_page(
        request, ctx, language, incident=incident, message_key="ack.done", id=incident_id, by=by
    )
