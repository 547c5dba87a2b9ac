"""Admin endpoints, behind the ``X-API-Key`` header."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from service.bundles.lifecycle import Activation, ActivationTrigger
from service.bundles.schemas import ActivateBundleRequest, BundleActivationResponse
from service.http.schemas import (
    BODY_TIMEOUT_RESPONSE,
    INVALID_REQUEST_RESPONSE,
    UNREADABLE_BODY_RESPONSE,
    AppendEventsRequest,
    AppendEventsResponse,
    ErrorResponse,
    UserId,
)
from service.routes.access import ADMIN_ACCESS_RESPONSES, admin_router
from service.routes.deps import RequestLimitsDep, RuntimeDep
from service.routes.events import events_to_new_events

router = admin_router(
    {
        400: UNREADABLE_BODY_RESPONSE,
        **ADMIN_ACCESS_RESPONSES,
        413: {"model": ErrorResponse, "description": "The body is over REASEQ_MAX_BODY_BYTES."},
        408: BODY_TIMEOUT_RESPONSE,
        422: INVALID_REQUEST_RESPONSE,
        503: {"model": ErrorResponse, "description": "The store cannot take the write now."},
    }
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
    with runtime.served.in_use() as served:
        result = await served.store.append_events(user_id, events_to_new_events(body.events))
    return AppendEventsResponse(
        user_id=user_id,
        appended=result.appended,
        duplicates=result.duplicates,
        sequence_length=result.sequence_length,
    )


_BUNDLE_ERRORS: dict[int | str, dict[str, object]] = {
    404: {
        "model": ErrorResponse,
        "description": "No such bundle under the bundle root (code bundle_not_found), or admin "
        "endpoints are disabled.",
    },
    409: {
        "model": ErrorResponse,
        "description": "Refused; the served bundle keeps serving: bundle_corrupt (a missing "
        "file, a checksum or graph signature mismatch), bundle_incompatible (not published to "
        "the store, other dimensions, a probe request failed), no_previous_bundle.",
    },
    503: {
        "model": ErrorResponse,
        "description": "The store cannot be checked or the active version cannot be recorded "
        "now; nothing changed.",
    },
}


def _activation(activation: Activation) -> BundleActivationResponse:
    return BundleActivationResponse(
        version=activation.version,
        previous_version=activation.previous_version,
        changed=activation.changed,
        seconds=activation.seconds,
    )


@router.post("/bundle/activate", response_model=BundleActivationResponse, responses=_BUNDLE_ERRORS)
async def activate_bundle(
    body: ActivateBundleRequest, runtime: RuntimeDep
) -> BundleActivationResponse:
    """Serve another bundle version without a restart: load it, verify its checksums and
    graphs, warm it up, check the store holds its item vectors, score a probe request, then
    swap it in. Requests in flight finish on the old bundle. With the Redis store the version
    is also made the active one there, so every worker and replica follows it."""
    return _activation(await runtime.lifecycle.activate(body.version, ActivationTrigger.ADMIN))


@router.post("/bundle/rollback", response_model=BundleActivationResponse, responses=_BUNDLE_ERRORS)
async def rollback_bundle(runtime: RuntimeDep) -> BundleActivationResponse:
    """Serve the previously served version again (verified and warmed like an activation)."""
    return _activation(await runtime.lifecycle.rollback())
