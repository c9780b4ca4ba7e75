"""The API's routes, one module per subject; thin: parse, call a store, convert."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from dashboards.api.schemas import Problem

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "not signed in, or an unknown API key"},
    403: {"model": Problem, "description": "the role does not allow this"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "not found"}}


def bad_parameter(location: str, name: str, message: str) -> HTTPException:
    """A 422 naming the parameter, shaped like FastAPI's own validation errors."""
    return HTTPException(
        422,
        [{"loc": [location, name], "msg": message, "type": "value_error"}],
    )
