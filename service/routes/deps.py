"""What route handlers take from the app, as ``Annotated`` dependency aliases.

The app state is set up by :func:`service.app.create_app` (metrics, API keys, request limits) and
by its lifespan (the runtime, once a bundle is loaded).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.errors import ServiceNotReady
from service.experiments.lifecycle import ExperimentLifecycle
from service.observability.metrics import ServiceMetrics
from service.ranking.limits import RequestLimits
from service.runtime import ServiceRuntime


async def get_runtime(request: Request) -> ServiceRuntime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ServiceNotReady("the service is starting: no bundle loaded yet")
    if not runtime.warmed:
        raise ServiceNotReady("the service is starting: bundle not warmed up")
    return runtime  # type: ignore[no-any-return]


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


async def get_request_limits(request: Request) -> RequestLimits:
    limits: RequestLimits = request.app.state.request_limits
    return limits


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


async def get_experiments(runtime: RuntimeDep) -> ExperimentLifecycle:
    return runtime.experiments


ExperimentsDep = Annotated[ExperimentLifecycle, Depends(get_experiments)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
RequestLimitsDep = Annotated[RequestLimits, Depends(get_request_limits)]
