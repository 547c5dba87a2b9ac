"""The one place that maps the service's domain errors (:mod:`service.errors`) to HTTP answers."""

from __future__ import annotations

import math
from http import HTTPStatus

import orjson
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from service.errors import (
    AdminDisabled,
    BodyReadTimeout,
    BodyTooLarge,
    BundleNotFoundError,
    BundleRejected,
    DeadlineExceeded,
    ExperimentRejected,
    HeadersTooLarge,
    InvalidRankRequest,
    Overloaded,
    PredictionLogOff,
    SchemaViolation,
    ServiceError,
    ServiceNotReady,
    StoreError,
    TooManyCandidates,
    TooManyEvents,
    Unauthorized,
)

HTTP_STATUS: dict[type[ServiceError], int] = {
    TooManyCandidates: status.HTTP_413_CONTENT_TOO_LARGE,
    TooManyEvents: status.HTTP_413_CONTENT_TOO_LARGE,
    InvalidRankRequest: status.HTTP_422_UNPROCESSABLE_CONTENT,
    SchemaViolation: status.HTTP_422_UNPROCESSABLE_CONTENT,
    StoreError: status.HTTP_503_SERVICE_UNAVAILABLE,
    ServiceNotReady: status.HTTP_503_SERVICE_UNAVAILABLE,
    DeadlineExceeded: status.HTTP_503_SERVICE_UNAVAILABLE,
    AdminDisabled: status.HTTP_404_NOT_FOUND,
    Unauthorized: status.HTTP_401_UNAUTHORIZED,
    BodyTooLarge: status.HTTP_413_CONTENT_TOO_LARGE,
    BodyReadTimeout: status.HTTP_408_REQUEST_TIMEOUT,
    HeadersTooLarge: status.HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE,
    Overloaded: status.HTTP_429_TOO_MANY_REQUESTS,
    BundleNotFoundError: status.HTTP_404_NOT_FOUND,
    BundleRejected: status.HTTP_409_CONFLICT,
    PredictionLogOff: status.HTTP_409_CONFLICT,
    ExperimentRejected: status.HTTP_409_CONFLICT,
}


def http_status(error: ServiceError) -> int:
    """The status of the most specific mapped class of ``error``; 500 for an unmapped one."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return status.HTTP_500_INTERNAL_SERVER_ERROR


class SafeJSONResponse(JSONResponse):
    """A JSON answer that renders whatever it is given: error bodies echo the caller's input,
    which may hold text UTF-8 cannot encode, non-finite floats or deep nesting."""

    def render(self, content: object) -> bytes:
        return orjson.dumps(_json_safe(content))


def error_response(error: ServiceError) -> JSONResponse:
    """The ``{"detail", "code"}`` answer of a domain error, with the headers its status needs."""
    headers: dict[str, str] = {}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "ApiKey"
    if isinstance(error, Overloaded):
        headers["Retry-After"] = str(error.retry_after_s)
    return SafeJSONResponse(
        {"detail": error.message, "code": error.code},
        status_code=http_status(error),
        headers=headers or None,
    )


async def _service_error_response(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return error_response(error)


_INT64_MAX = 2**63 - 1
#: Deeper parts of an echoed input are elided (orjson refuses to nest beyond 255 levels).
_MAX_ECHO_DEPTH = 32
_ELIDED = "…"


def _json_safe(value: object, depth: int = 0) -> object:
    """Echoed inputs as JSON can carry them: lone surrogates (``"\\ud800"`` in the body) become
    their escape, inf, nan and huge integers strings, and nesting past a depth is elided."""
    if isinstance(value, str):
        return _text(value)
    if depth >= _MAX_ECHO_DEPTH and isinstance(value, dict | list | tuple):
        return _ELIDED
    if isinstance(value, dict):
        return {_text(str(key)): _json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT64_MAX:
        return str(value)
    return value


def _text(value: str) -> str:
    """``value`` as valid UTF-8 text: a lone surrogate becomes its ``\\udXXX`` escape."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


async def _validation_error_response(_: Request, error: Exception) -> Response:
    """FastAPI's field errors as a 422 ``{detail, code}``, rendered so that echoed inputs
    (``1e999``, ``10**30``, ``"\\ud800"``, a list nested 600 deep) never 500."""
    assert isinstance(error, RequestValidationError)
    detail = jsonable_encoder(_json_safe(error.errors()))
    return SafeJSONResponse(
        {"detail": detail, "code": SchemaViolation.code},
        status_code=http_status(SchemaViolation("")),
    )


#: What the framework itself answers, before a route runs: an unreadable body, an unknown route,
#: a method the route does not take.
FRAMEWORK_STATUSES = (
    status.HTTP_400_BAD_REQUEST,
    status.HTTP_404_NOT_FOUND,
    status.HTTP_405_METHOD_NOT_ALLOWED,
)


def framework_code(status_code: int) -> str:
    """The ``code`` of a framework error: its status named, ``bad_request``, ``not_found``."""
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        phrase = f"http {status_code}"
    return phrase.lower().replace(" ", "_").replace("-", "_")


async def _http_error_response(request: Request, error: Exception) -> Response:
    """Framework errors (an unreadable body, an unknown route) in the same ``{detail, code}``
    shape as the domain's, the code named after the status: ``bad_request``, ``not_found``."""
    assert isinstance(error, HTTPException)
    if error.status_code < status.HTTP_400_BAD_REQUEST:
        return await http_exception_handler(request, error)
    return SafeJSONResponse(
        {"detail": str(error.detail), "code": framework_code(error.status_code)},
        status_code=error.status_code,
        headers=error.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error_response)
    app.add_exception_handler(HTTPException, _http_error_response)
    app.add_exception_handler(RequestValidationError, _validation_error_response)
