"""The one place the service's errors become HTTP answers, and the one helper that builds a 422.

Every refusal is `{"detail": "..."}`, but a validation error, which has FastAPI's shape (a list of
`{"loc", "msg", "type", "input"}`) so that a client parses one kind of 422.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from api.schemas import ErrorPublic
from service.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    Unavailable,
    UpstreamRefused,
    WebhooksError,
)

STATUS: list[tuple[type[WebhooksError], int]] = [
    (PayloadTooLarge, 413),
    (InvalidInput, 422),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (RateLimited, 429),
    (Unavailable, 503),
    (UpstreamRefused, 502),
]


# The answer past one of the door's rates (service/limits.py), as the routes that have one document it.
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorPublic,
        "description": "Past a rate limit of yours (named): try again after `Retry-After` seconds; "
        "`RateLimit-Policy` and `RateLimit` (IETF httpapi draft) say the quota and what is left of it",
    }
}


def validation_error(
    field: Sequence[str | int],
    message: str,
    *,
    value: object = None,
    location: Literal["body", "query", "path"] = "body",
) -> RequestValidationError:
    """A 422 in FastAPI's own shape, naming the field and what to fix."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (location, *field), "msg": message, "input": value}]
    )


async def _invalid_request(request: Request, err: Exception) -> JSONResponse:
    """FastAPI's 422, which echoes each invalid `input`; without the inputs when one cannot be written as
    JSON (a number that is not finite, nesting too deep), rather than a 500. The request guard refuses
    those at the door (api/request_guard.py): this holds if one gets past it."""
    assert isinstance(err, RequestValidationError)
    try:
        return await request_validation_exception_handler(request, err)
    except (ValueError, RecursionError):
        shown = [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in err.errors()]
        return JSONResponse({"detail": jsonable_encoder(shown)}, 422)


async def _webhooks_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, WebhooksError)
    quota = err.quota.headers() if err.quota else {}
    if isinstance(err, InvalidInput) and not isinstance(err, PayloadTooLarge):
        invalid = validation_error(err.field, err.message, value=err.value, location=err.location)
        response = await _invalid_request(request, invalid)
        response.headers.update(quota)
        return response
    status = next(code for kind, code in STATUS if isinstance(err, kind))
    headers = dict(quota)
    if isinstance(err, Unavailable | RateLimited):
        headers["Retry-After"] = str(err.retry_after)
    elif isinstance(err, Unauthenticated):
        headers["WWW-Authenticate"] = err.challenge
    return JSONResponse({"detail": err.message}, status, headers=headers or None)


def _unreadable_json(err: HTTPException) -> str | None:
    """What to fix in a body that is valid JSON but that Python's parser gave up on, which FastAPI
    answers with a bare 400 "There was an error parsing the body"; None for any other HTTP error."""
    if err.status_code != 400 or err.__cause__ is None:
        return None
    cause = err.__cause__
    if isinstance(cause, RecursionError):
        return "the JSON nests arrays or objects too deeply to be read (about a thousand levels); flatten it"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return "a number in the JSON has more digits than are read (4,300); send it as a string"
    return None


async def _http_error(request: Request, err: Exception) -> Response:
    assert isinstance(err, HTTPException)
    message = _unreadable_json(err)
    if message is not None:
        return await _invalid_request(request, validation_error((), message))
    return await http_exception_handler(request, err)


def install(app: FastAPI) -> None:
    app.add_exception_handler(WebhooksError, _webhooks_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
