"""POST /v1/rank."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request, Response

from service.errors import NoExperiment
from service.experiments.predictions import prediction_record
from service.http.api_keys import API_KEY_HEADER
from service.http.decoded_body import decoded_body_route
from service.http.schemas import (
    BODY_TIMEOUT_RESPONSE,
    INVALID_REQUEST_RESPONSE,
    UNREADABLE_BODY_RESPONSE,
    ErrorResponse,
    RankRequest,
    RankResponse,
)
from service.observability.logs import current_request_id
from service.observability.metrics import ServiceMetrics
from service.ranking import RankQuery, Stage
from service.ranking.breakdown import RequestBreakdown, current_breakdown
from service.ranking.limits import RequestLimits
from service.routes.access import require_rank_key
from service.routes.deps import (
    MetricsDep,
    RequestLimitsDep,
    RuntimeDep,
    get_metrics,
    get_request_limits,
    get_runtime,
)
from service.routes.events import events_to_sequence
from service.runtime import ServiceRuntime

_ERRORS: dict[int | str, dict[str, object]] = {
    200: {
        "headers": {
            "Server-Timing": {
                "description": "Where the request's time went in the server, in ms (W3C "
                "Server Timing): fetch (store), wait (for a scoring batch), model (the batch's "
                "scoring in the scoring thread), handoff (the batch's trips to that thread and "
                "back to the event loop), model_cpu (the scoring thread's CPU time during model: "
                "much less than model means it waited for a core), gc and lag (garbage-collection "
                "pauses and event-loop lag while it ran), server (all of it); batch;desc= the "
                "requests in its batch.",
                "schema": {"type": "string"},
            }
        }
    },
    400: UNREADABLE_BODY_RESPONSE,
    401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key (where required)."},
    413: {
        "model": ErrorResponse,
        "description": "The body is over REASEQ_MAX_BODY_BYTES, or too many candidates or "
        "recent events.",
    },
    408: BODY_TIMEOUT_RESPONSE,
    422: {
        **INVALID_REQUEST_RESPONSE,
        "description": "The body breaks the schema (a list of field errors) or a rule of the "
        "service; unknown_arm: `arm` names no arm of the running experiment; no_experiment: "
        "`arm` sent while none runs.",
    },
    429: {
        "model": ErrorResponse,
        "description": "Overloaded: every admission slot and queue place is taken, the "
        "request waited too long for one, or its API key holds its share of them. Retry after "
        "the Retry-After seconds.",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer"},
            }
        },
    },
    503: {
        "model": ErrorResponse,
        "description": "Not ready yet (not_ready), or the request's budget ran out before it "
        "was scored (deadline_exceeded). A store outage is not a 503: rankings are degraded.",
    },
}


async def _rank_decoded(request: Request, body: RankRequest) -> Response:
    """A rank request whose body pydantic-core decoded from its bytes: the route's dependencies,
    in their order, then the answer."""
    await require_rank_key(request, request.headers.get(API_KEY_HEADER) or None)
    return await _answer(
        body,
        await get_runtime(request),
        await get_metrics(request),
        await get_request_limits(request),
    )


# A valid JSON body skips FastAPI's parsing and dependency solving (service/http/decoded_body.py);
# the endpoint below documents the route and answers every other body.
router = APIRouter(
    prefix="/v1", tags=["rank"], route_class=decoded_body_route(RankRequest, _rank_decoded)
)


@router.post(
    "/rank",
    response_model=RankResponse,
    responses=_ERRORS,
    dependencies=[Depends(require_rank_key)],
)
async def rank(
    body: RankRequest,
    runtime: RuntimeDep,
    metrics: MetricsDep,
    limits: RequestLimitsDep,
) -> Response:
    """Score the candidates for the user, highest first.

    The answer's ``request_id`` is the ``X-Request-ID`` header when the caller sent a sane one
    (up to 128 printable ASCII characters), else a fresh one; the response echoes it as
    ``X-Request-ID`` and every log line of the request carries it.

    While an experiment runs (``PUT /v1/admin/experiment``), one of its arms answers, by the
    request's ``arm``, else the experiment's override context key, else a sticky hash of the
    user (or of a context value); ``experiment`` and ``arm`` name it, and ``bundle_version`` is
    the arm's bundle.
    """
    return await _answer(body, runtime, metrics, limits)


async def _answer(
    body: RankRequest, runtime: ServiceRuntime, metrics: ServiceMetrics, limits: RequestLimits
) -> Response:
    """The ranking of a decoded request: JSON bytes with the request's Server-Timing."""
    query = RankQuery(
        request_id=current_request_id.get(),
        user_id=body.user_id,
        candidates=body.candidates,
        top_k=body.top_k,
        recent_events=events_to_sequence(body.recent_events),
        explain=body.explain,
        timeout_ms=body.timeout_ms,
        as_of=body.as_of,
    )
    limits.check_rank(query)
    breakdown = RequestBreakdown()
    current_breakdown.set(breakdown)
    # Without an experiment the served bundle answers; the check is all it costs.
    experiment = runtime.experiments.running
    if experiment is None:
        if body.arm is not None:
            raise NoExperiment(f"arm {body.arm!r} was asked for, but no experiment runs: omit arm")
        ranking = await runtime.served.rank(query)
        if runtime.answer_log is not None:
            runtime.answer_log.record(prediction_record(query, ranking, body.context))
    else:
        ranking = await experiment.rank(query, body.context, body.arm)
    metrics.candidates.observe(len(body.candidates))
    for reason in ranking.degraded:
        metrics.degraded.labels(reason=reason.value).inc()
    # The domain result serialises straight to JSON bytes; response_model documents its shape.
    with runtime.observer.stage(Stage.SERIALISATION):
        payload = orjson.dumps(ranking)
    headers = {"Server-Timing": breakdown.header()}
    return Response(payload, media_type="application/json", headers=headers)
