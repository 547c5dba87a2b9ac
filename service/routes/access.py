"""Route dependencies that check the ``X-API-Key`` header against the deployment's keys.

The header is read through FastAPI's :class:`~fastapi.security.APIKeyHeader`, so the OpenAPI
schema declares it as a security scheme (and ``/docs`` has an Authorize button); the checks and
their answers (401 ``unauthorized`` with ``WWW-Authenticate: ApiKey``) are the service's own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Security
from fastapi.security import APIKeyHeader

from service.errors import AdminDisabled, AdminUnauthorized
from service.http.api_keys import API_KEY_HEADER, ServiceKeys, rank_caller
from service.http.schemas import ErrorResponse

RANK_KEY = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="RankApiKey",
    description="An API key of /v1/rank; required only where the deployment sets "
    "REASEQ_API_KEYS or REASEQ_API_KEYS_FILE.",
    auto_error=False,
)
ADMIN_KEY = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="AdminApiKey",
    description="An admin API key (REASEQ_ADMIN_API_KEY or REASEQ_ADMIN_API_KEYS_FILE).",
    auto_error=False,
)


def _keys(request: Request) -> ServiceKeys:
    keys: ServiceKeys = request.app.state.api_keys
    return keys


async def require_rank_key(
    request: Request, x_api_key: Annotated[str | None, Security(RANK_KEY)]
) -> None:
    """Let the request through when ``/v1/rank`` needs no key, or with an accepted one.

    Dependencies on the rank path are ``async``: FastAPI runs a plain ``def`` dependency in its
    thread pool, a thread hop per request for a few attribute reads."""
    rank_caller(_keys(request).rank, x_api_key)


async def require_admin_key(
    request: Request, x_api_key: Annotated[str | None, Security(ADMIN_KEY)]
) -> None:
    """Let the request through only with one of the admin keys."""
    keys = _keys(request).admin
    if not keys.enabled:
        raise AdminDisabled(
            "admin endpoints are disabled: set REASEQ_ADMIN_API_KEY or "
            "REASEQ_ADMIN_API_KEYS_FILE to enable them"
        )
    if x_api_key is None:
        raise AdminUnauthorized("missing X-API-Key header: admin endpoints require an admin key")
    if not keys.accepts(x_api_key):
        raise AdminUnauthorized("X-API-Key not accepted as an admin key")


#: What any admin route may answer before it runs: no accepted key, or admin turned off.
ADMIN_ACCESS_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key."},
    404: {"model": ErrorResponse, "description": "Admin endpoints are disabled."},
}


def admin_router(responses: dict[int | str, dict[str, object]]) -> APIRouter:
    """A router of admin endpoints: under ``/v1/admin``, each behind an admin key."""
    return APIRouter(
        prefix="/v1/admin",
        tags=["admin"],
        dependencies=[Depends(require_admin_key)],
        responses=responses,
    )
