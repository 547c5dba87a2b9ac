"""Route dependencies that check the ``X-API-Key`` header against the deployment's keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request

from service.errors import AdminDisabled, AdminUnauthorized, Unauthorized
from service.http.api_keys import ServiceKeys

RANK_KEY_HEADER = Header(
    description="API key; required only where the deployment sets REASEQ_API_KEYS or "
    "REASEQ_API_KEYS_FILE.",
)
ADMIN_KEY_HEADER = Header(max_length=1024, description="An admin API key.")


def _keys(request: Request) -> ServiceKeys:
    keys: ServiceKeys = request.app.state.api_keys
    return keys


async def require_rank_key(
    request: Request, x_api_key: Annotated[str | None, RANK_KEY_HEADER] = None
) -> None:
    """Let the request through when ``/v1/rank`` needs no key, or with an accepted one.

    Dependencies on the rank path are ``async``: FastAPI runs a plain ``def`` dependency in its
    thread pool, a thread hop per request for a few attribute reads."""
    keys = _keys(request).rank
    if not keys.enabled:
        return
    if x_api_key is None:
        raise Unauthorized("missing X-API-Key header: this deployment requires an API key")
    if not keys.accepts(x_api_key):
        raise Unauthorized("X-API-Key not accepted: check the key your deployment issued")


async def require_admin_key(
    request: Request, x_api_key: Annotated[str | None, ADMIN_KEY_HEADER] = None
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
