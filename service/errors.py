"""Domain errors of the ranking service and the one place that maps them to HTTP."""

from __future__ import annotations

import math

import orjson
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response


class ServiceError(Exception):
    """Base of the service's domain errors; ``code`` is machine-readable."""

    code = "service_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BundleNotFoundError(ServiceError):
    code = "bundle_not_found"


class InvalidRankRequest(ServiceError):
    """The request is well-formed JSON but breaks a limit or a rule of the service."""

    code = "invalid_request"


class TooManyCandidates(InvalidRankRequest):
    code = "too_many_candidates"


class TooManyEvents(InvalidRankRequest):
    code = "too_many_events"


class DuplicateCandidates(InvalidRankRequest):
    code = "duplicate_candidates"


class InvalidTopK(InvalidRankRequest):
    code = "invalid_top_k"


class StoreError(ServiceError):
    code = "store_error"


class StoreTimeout(StoreError):
    """The store did not answer within the request's budget."""

    code = "store_timeout"


class StoreUnavailable(StoreError):
    """The store cannot be reached or answered garbage."""

    code = "store_unavailable"


class ServiceNotReady(ServiceError):
    code = "not_ready"


class AdminDisabled(ServiceError):
    code = "admin_disabled"


class AdminUnauthorized(ServiceError):
    code = "unauthorized"


HTTP_STATUS: dict[type[ServiceError], int] = {
    TooManyCandidates: status.HTTP_413_CONTENT_TOO_LARGE,
    TooManyEvents: status.HTTP_413_CONTENT_TOO_LARGE,
    InvalidRankRequest: status.HTTP_422_UNPROCESSABLE_CONTENT,
    StoreError: status.HTTP_503_SERVICE_UNAVAILABLE,
    ServiceNotReady: status.HTTP_503_SERVICE_UNAVAILABLE,
    AdminDisabled: status.HTTP_404_NOT_FOUND,
    AdminUnauthorized: status.HTTP_401_UNAUTHORIZED,
}


def http_status(error: ServiceError) -> int:
    """The status of the most specific mapped class of ``error``; 500 for an unmapped one."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return status.HTTP_500_INTERNAL_SERVER_ERROR


async def _service_error_response(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    headers = {"WWW-Authenticate": "ApiKey"} if isinstance(error, AdminUnauthorized) else None
    return JSONResponse(
        {"detail": error.message, "code": error.code},
        status_code=http_status(error),
        headers=headers,
    )


_INT64_MAX = 2**63 - 1


def _json_safe(value: object) -> object:
    """Echoed inputs as JSON can carry them: inf, nan and huge integers become strings."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT64_MAX:
        return str(value)
    return value


async def _validation_error_response(_: Request, error: Exception) -> Response:
    """FastAPI's 422 body, rendered so that echoed inputs (``1e999``, ``10**30``) never 500."""
    assert isinstance(error, RequestValidationError)
    body = orjson.dumps({"detail": _json_safe(jsonable_encoder(error.errors()))})
    return Response(
        body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, media_type="application/json"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error_response)
    app.add_exception_handler(RequestValidationError, _validation_error_response)
