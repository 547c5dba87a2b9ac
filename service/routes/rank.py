"""POST /v1/rank."""

from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Response

from service.ranking import RankQuery
from service.routes.events import events_to_sequence
from service.runtime import MetricsDep, RuntimeDep
from service.schemas import ErrorResponse, RankRequest, RankResponse

router = APIRouter(prefix="/v1", tags=["rank"])

_ERRORS: dict[int | str, dict[str, object]] = {
    413: {"model": ErrorResponse, "description": "Too many candidates or recent events."},
    503: {"model": ErrorResponse, "description": "Not ready, or the store is unreachable."},
}


@router.post("/rank", response_model=RankResponse, responses=_ERRORS)
async def rank(
    body: RankRequest,
    runtime: RuntimeDep,
    metrics: MetricsDep,
    x_request_id: Annotated[str | None, Header(max_length=128)] = None,
) -> Response:
    """Score the candidates for the user, highest first."""
    query = RankQuery(
        request_id=x_request_id or uuid.uuid4().hex,
        user_id=body.user_id,
        candidates=body.candidates,
        top_k=body.top_k,
        recent_events=events_to_sequence(body.recent_events),
        explain=body.explain,
        timeout_ms=body.timeout_ms,
    )
    ranking = await runtime.pipeline.rank(query)
    metrics.candidates.observe(len(body.candidates))
    for reason in ranking.degraded:
        metrics.degraded.labels(reason=reason.value).inc()
    # The domain result serialises straight to JSON bytes; response_model documents its shape.
    return Response(orjson.dumps(ranking), media_type="application/json")
