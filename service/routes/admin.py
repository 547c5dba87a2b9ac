"""Admin endpoints, behind the ``X-API-Key`` header."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from service.routes.access import require_admin_key
from service.routes.events import events_to_new_events
from service.routes.limits import RequestLimitsDep
from service.runtime import RuntimeDep
from service.schemas import (
    INVALID_REQUEST_RESPONSE,
    UNREADABLE_BODY_RESPONSE,
    AppendEventsRequest,
    AppendEventsResponse,
    ErrorResponse,
    UserId,
)

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin_key)],
    responses={
        400: UNREADABLE_BODY_RESPONSE,
        401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key."},
        404: {"model": ErrorResponse, "description": "Admin endpoints are disabled."},
        413: {"model": ErrorResponse, "description": "The body is over REASEQ_MAX_BODY_BYTES."},
        422: INVALID_REQUEST_RESPONSE,
        503: {"model": ErrorResponse, "description": "The store cannot take the write now."},
    },
)


@router.post("/users/{user_id}/events", response_model=AppendEventsResponse)
async def append_events(
    user_id: Annotated[UserId, Path()],
    body: AppendEventsRequest,
    runtime: RuntimeDep,
    limits: RequestLimitsDep,
) -> AppendEventsResponse:
    """Append behaviours to the user's stored sequence, each in place by its timestamp (the
    newest, up to the bundle's maximum length, are kept). Events whose ``event_id`` the user's
    recent events already carry are counted as duplicates and not appended, so a batch that
    failed (503: the store could not take the write) can be sent again as it is."""
    limits.check_ids("user_id", [user_id])
    limits.check_ids("item_id", (event.item_id for event in body.events))
    result = await runtime.store.append_events(user_id, events_to_new_events(body.events))
    return AppendEventsResponse(
        user_id=user_id,
        appended=result.appended,
        duplicates=result.duplicates,
        sequence_length=result.sequence_length,
    )
