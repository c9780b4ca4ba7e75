"""Upsert the dashboards into a running Grafana over its HTTP API, with ``grafana-client``.

The calls, all documented in Grafana's HTTP API reference:

1. ``GET /api/health``: is this a Grafana at all (a wrong URL fails here, by name);
2. ``GET /api/folders/{uid}``: does Siaga's folder exist (a wrong token fails here: 401);
3. ``POST /api/folders`` ``{uid, title}`` when it does not;
4. ``POST /api/dashboards/db`` ``{dashboard, folderUid, overwrite: true, message}`` per dashboard:
   the dashboard's fixed ``uid`` makes it an upsert.

Each regency's folder (:func:`push_regencies`) the same way, then its team and permissions:

5. ``GET /api/teams/search?name=`` and ``POST /api/teams`` ``{name}`` when it is missing;
6. ``POST /api/folders/{uid}/permissions`` ``{items}``: the regency's team may view, the Editor
   role may edit (the push's own service account), and nobody else sees it (the Viewer role's
   default view is not in the list). Setting permissions needs a token of the Admin role.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import niquests
from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaUnauthorizedError,
)

from dashboards.settings import GrafanaSettings
from ingest.errors import SiagaError

_TIMEOUT_S: float = GrafanaSettings.model_fields["timeout_s"].default  # the one default


class PushError(SiagaError):
    """Grafana could not be reached, refused the token, or refused a dashboard."""


@dataclass(frozen=True, slots=True)
class PushResult:
    """What the push did: the folder (created or found) and each dashboard's URL path."""

    folder_created: bool
    dashboards: list[tuple[str, str]]


def _grafana(url: str, token: str, timeout_s: float) -> GrafanaApi:
    api: GrafanaApi = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    return api


def _connect(url: str, token: str, timeout_s: float) -> GrafanaApi:
    """A client for the Grafana at ``url``, after it answered ``/api/health`` as Grafana does."""
    api = _grafana(url, token, timeout_s)
    try:
        health = api.client.GET("/health")
    except GrafanaException as exc:
        if exc.status_code:  # something answered, with an error
            raise PushError(
                f"{url} answered /api/health with {exc.status_code}, not as Grafana does"
            ) from None
        raise PushError(f"no Grafana answers at {url}: {_reason(exc)}") from None
    except (niquests.exceptions.RequestException, OSError) as exc:
        raise PushError(f"no Grafana answers at {url}: {_reason(exc)}") from None
    except ValueError:  # an answer, but not JSON: something else listens there
        raise PushError(f"{url} answered /api/health, but not as Grafana does") from None
    if not isinstance(health, dict) or "database" not in health:
        raise PushError(f"{url} answered /api/health, but not as Grafana does")
    return api


def _ensure_folder(api: GrafanaApi, url: str, uid: str, title: str) -> bool:
    """Create the folder when missing; True when it was created."""
    try:
        api.folder.get_folder(uid)  # type: ignore[no-untyped-call]
    except GrafanaUnauthorizedError:
        raise PushError(
            f"Grafana at {url} refused the token (401): set SIAGA_GRAFANA__TOKEN to a service "
            "account token with the Editor role"
        ) from None
    except GrafanaClientError as exc:
        if exc.status_code == 403:
            raise PushError(f"the token may not read folders at {url} (403)") from None
        if exc.status_code != 404:
            raise PushError(f"Grafana at {url}: {exc.message}") from None
        try:
            api.folder.create_folder(title, uid=uid)  # type: ignore[no-untyped-call]
        except GrafanaException as create_exc:
            raise PushError(f"Grafana refused the folder {uid}: {create_exc.message}") from None
        return True
    return False


def _upsert(
    api: GrafanaApi, dashboards: Sequence[dict[str, Any]], folder_uid: str, message: str
) -> list[tuple[str, str]]:
    pushed = []
    for board in dashboards:
        try:
            answer = api.dashboard.update_dashboard(  # type: ignore[no-untyped-call]
                {"dashboard": board, "folderUid": folder_uid, "overwrite": True, "message": message}
            )
        except GrafanaException as exc:
            raise PushError(
                f"Grafana refused dashboard {board.get('uid')}: {exc.message}"
            ) from None
        pushed.append((str(board.get("uid")), str(answer.get("url", ""))))
    return pushed


def push_dashboards(
    url: str,
    token: str,
    dashboards: Sequence[dict[str, Any]],
    *,
    folder_uid: str,
    folder_title: str,
    timeout_s: float = _TIMEOUT_S,
    message: str = "siaga dashboards push",
) -> PushResult:
    """Create the folder when missing and upsert every dashboard into it (overwrite).

    Raises:
        PushError: Naming the URL or the token as the cause, or the dashboard Grafana refused.
    """
    api = _connect(url, token, timeout_s)
    created = _ensure_folder(api, url, folder_uid, folder_title)
    return PushResult(created, _upsert(api, dashboards, folder_uid, message))


@dataclass(frozen=True, slots=True)
class FolderPlan:
    """A folder to push: its uid, title, the team that views it, and its dashboards (JSON)."""

    uid: str
    title: str
    team: str
    dashboards: Sequence[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class FolderPush:
    """What the push did to one regency's folder."""

    uid: str
    folder_created: bool
    team_id: int
    team_created: bool
    dashboards: list[tuple[str, str]]


VIEW, EDIT = 1, 2
"""Grafana's folder permission levels."""


def _ensure_team(api: GrafanaApi, name: str) -> tuple[int, bool]:
    try:
        found = api.teams.get_team_by_name(name)  # type: ignore[no-untyped-call]
        for team in found:
            if team.get("name") == name:
                return int(team["id"]), False
        created = api.teams.add_team({"name": name})  # type: ignore[no-untyped-call]
    except GrafanaException as exc:
        raise PushError(f"Grafana refused the team {name!r}: {exc.message}") from None
    return int(created["teamId"]), True


def push_regencies(
    url: str,
    token: str,
    folders: Sequence[FolderPlan],
    *,
    timeout_s: float = _TIMEOUT_S,
    message: str = "siaga dashboards push",
) -> list[FolderPush]:
    """For each regency: its folder, its dashboards, its team, and who may see the folder.

    Raises:
        PushError: Naming what Grafana refused (a 403 on permissions: the token needs the Admin
            role).
    """
    api = _connect(url, token, timeout_s)
    pushed = []
    for folder in folders:
        created = _ensure_folder(api, url, folder.uid, folder.title)
        boards = _upsert(api, folder.dashboards, folder.uid, message)
        team_id, team_created = _ensure_team(api, folder.team)
        items = [{"teamId": team_id, "permission": VIEW}, {"role": "Editor", "permission": EDIT}]
        try:
            api.folder.update_folder_permissions(folder.uid, items)  # type: ignore[no-untyped-call]
        except GrafanaException as exc:
            hint = " (setting permissions needs a token of the Admin role)"
            raise PushError(
                f"Grafana refused the permissions of folder {folder.uid}: {exc.message}"
                f"{hint if exc.status_code == 403 else ''}"
            ) from None
        pushed.append(FolderPush(folder.uid, created, team_id, team_created, boards))
    return pushed


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "…"
