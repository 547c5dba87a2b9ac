"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from service.http.schemas import ErrorResponse, ReadinessResponse
from service.routes.deps import MetricsDep
from service.runtime import ServiceRuntime

router = APIRouter(tags=["operations"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process is up (says nothing about the bundle or the store)."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    response_model=ReadinessResponse,
    responses={503: {"model": ReadinessResponse, "description": "Not ready, with the reason."}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 once the bundle is loaded and warm; 503 with a reason otherwise.

    The store does not decide readiness: while it is down the service answers degraded from the
    bundle, which beats no answer, and a shared store's outage must not take every replica out
    of service. ``store_reachable`` says whether it answers now, and ``store_error`` why not."""
    runtime: ServiceRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return _not_ready("the bundle is not loaded yet")
    reason = await runtime.unready_reason()
    if reason is not None:
        return _not_ready(reason)
    store_error = await runtime.store_error()
    ready = ReadinessResponse(
        status="ready",
        bundle_version=runtime.bundle.version,
        store_reachable=store_error is None,
        store_error=None
        if store_error is None
        else ErrorResponse(detail=store_error.message, code=store_error.code),
    )
    return JSONResponse(ready.model_dump(exclude_none=True))


def _not_ready(reason: str) -> JSONResponse:
    body = ReadinessResponse(status="not_ready", reason=reason)
    return JSONResponse(body.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, service_metrics: MetricsDep) -> Response:
    """Prometheus exposition of the service's metrics (every worker's, in multiprocess mode).

    Readiness is evaluated first, so ``reaseq_ready`` is fresh at each scrape even where no
    orchestrator probes ``/readyz``.
    """
    runtime: ServiceRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        await runtime.unready_reason()
        await runtime.store_error()
    body, content_type = service_metrics.exposition()
    return Response(body, media_type=content_type)
