"""The API's routes, one module per subject; thin: parse, call a store, convert."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException

from dashboards.api.schemas import Problem
from dashboards.api.views import to_ns

# Times the stores can hold: InfluxDB's range (signed 64-bit nanoseconds, 1677 to 2262), which
# also fits every BIGINT column of the SQL stores.
EARLIEST = datetime(1678, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)  # leaves room for a silence's duration

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


def time_ns(location: str, name: str, moment: datetime | None, default: int | None) -> int | None:
    """A time parameter in nanoseconds (``default`` when absent).

    Raises:
        HTTPException: 422 naming the parameter when the stores cannot hold the time.
    """
    if moment is None:
        return default
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if not EARLIEST <= aware <= LATEST:
        raise bad_parameter(
            location, name, f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"
        )
    return to_ns(aware)
