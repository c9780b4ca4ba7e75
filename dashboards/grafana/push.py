"""Upsert the dashboards into a running Grafana over its HTTP API, with ``grafana-client``.

The calls, all documented in Grafana's HTTP API reference:

1. ``GET /api/health``: is this a Grafana at all (a wrong URL fails here, by name);
2. ``GET /api/folders/{uid}``: does Siaga's folder exist (a wrong token fails here: 401);
3. ``POST /api/folders`` ``{uid, title}`` when it does not;
4. ``POST /api/dashboards/db`` ``{dashboard, folderUid, overwrite: true, message}`` per dashboard:
   the dashboard's fixed ``uid`` makes it an upsert.
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

from ingest.errors import SiagaError


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


def push_dashboards(
    url: str,
    token: str,
    dashboards: Sequence[dict[str, Any]],
    *,
    folder_uid: str,
    folder_title: str,
    timeout_s: float = 10.0,
    message: str = "siaga dashboards push",
) -> PushResult:
    """Create the folder when missing and upsert every dashboard into it (overwrite).

    Raises:
        PushError: Naming the URL or the token as the cause, or the dashboard Grafana refused.
    """
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
    try:
        api.folder.get_folder(folder_uid)  # type: ignore[no-untyped-call]
        created = False
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
        created = True
        try:
            api.folder.create_folder(folder_title, uid=folder_uid)  # type: ignore[no-untyped-call]
        except GrafanaException as create_exc:
            raise PushError(
                f"Grafana refused the folder {folder_uid}: {create_exc.message}"
            ) from None
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
    return PushResult(created, pushed)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "…"
