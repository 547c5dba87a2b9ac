"""Admin endpoints, behind the ``X-API-Key`` header."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path

from service.errors import AdminDisabled, AdminUnauthorized
from service.routes.events import events_to_sequence
from service.runtime import RuntimeDep
from service.schemas import AppendEventsRequest, AppendEventsResponse, ErrorResponse, UserId
from service.settings import SettingsDep


def require_admin_key(
    settings: SettingsDep,
    x_api_key: Annotated[str | None, Header(max_length=1024)] = None,
) -> None:
    """Let the request through only with the configured admin key."""
    expected = settings.admin_api_key
    if expected is None or not expected.get_secret_value():
        raise AdminDisabled("admin endpoints are disabled: set REASEQ_ADMIN_API_KEY to enable them")
    if x_api_key is None or not secrets.compare_digest(
        x_api_key.encode(), expected.get_secret_value().encode()
    ):
        raise AdminUnauthorized("missing or wrong X-API-Key header")


router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin_key)],
    responses={
        401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key."},
        404: {"model": ErrorResponse, "description": "Admin endpoints are disabled."},
    },
)


@router.post("/users/{user_id}/events", response_model=AppendEventsResponse)
async def append_events(
    user_id: Annotated[UserId, Path()],
    body: AppendEventsRequest,
    runtime: RuntimeDep,
) -> AppendEventsResponse:
    """Append behaviours to the user's stored sequence (kept to the bundle's maximum length)."""
    length = await runtime.store.append_events(user_id, events_to_sequence(body.events))
    return AppendEventsResponse(user_id=user_id, sequence_length=length)
