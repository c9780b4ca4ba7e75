"""Bad input, answered in one shape by every route: ``422 {"detail": [{loc, msg, type}]}``.

FastAPI answers a body it cannot parse as JSON with 422, but one it cannot even decode (bytes
that are not UTF-8, a broken form) with ``400 "There was an error parsing the body"``, and its
422 entries echo the offending ``input`` (a password sent in the wrong field would come back).
Both are translated here, once: 422, the field's location, a sentence, a type; never the input.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

# FastAPI's own words for a body it could not decode (fastapi/routing.py).
_UNPARSABLE_BODY = "There was an error parsing the body"


def problem(errors: list[dict[str, Any]]) -> JSONResponse:
    """The 422 answer for ``errors`` (``loc``, ``msg`` and ``type`` of each kept)."""
    detail = [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": error.get("type", "value_error"),
        }
        for error in errors
    ]
    return JSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem(list(exc.errors()))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        return problem(
            [
                {
                    "loc": ["body"],
                    "msg": "the body is not valid UTF-8 JSON or form data",
                    "type": "json_invalid",
                }
            ]
        )
    from fastapi.exception_handlers import http_exception_handler  # noqa: PLC0415

    return await http_exception_handler(request, exc)


def install(app: FastAPI) -> None:
    """Answer bad input to every route of ``app`` in the one shape."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
