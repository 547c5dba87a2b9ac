"""What the app holds while it serves: the bundle, the store, the pipeline, the metrics."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.bundle import LoadedBundle
from service.errors import ServiceNotReady
from service.metrics import ServiceMetrics
from service.ranking import GraphRunner, RankingLimits, RankingPipeline
from service.settings import Settings
from service.stores import RankingStore, open_store

log = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    settings: Settings
    bundle: LoadedBundle
    store: RankingStore
    pipeline: RankingPipeline
    warmed: bool = False

    @classmethod
    async def start(cls, settings: Settings) -> ServiceRuntime:
        """Load, verify and warm the bundle, then open the store."""
        bundle_dir = settings.resolve_bundle_dir()
        bundle = await asyncio.to_thread(
            LoadedBundle.load, bundle_dir, settings.onnx_intra_op_threads
        )
        await asyncio.to_thread(bundle.warm_up)
        store = open_store(settings.store_config(), bundle)
        limits = RankingLimits(
            max_candidates=settings.max_candidates,
            max_recent_events=settings.max_recent_events,
            default_top_k=settings.default_top_k,
        )
        pipeline = RankingPipeline(bundle, store, GraphRunner(bundle, settings.graph_mode), limits)
        log.info("serving bundle %s with the %s store", bundle.version, settings.store)
        return cls(settings, bundle, store, pipeline, warmed=True)

    async def unready_reason(self) -> str | None:
        """Why the service should not take traffic, or None when it should."""
        if not self.warmed:
            return "bundle not warmed up"
        if not await self.store.ping():
            return f"{self.settings.store} store does not answer"
        return None

    async def close(self) -> None:
        await self.store.close()


def get_runtime(request: Request) -> ServiceRuntime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ServiceNotReady("the service is starting: no bundle loaded yet")
    return runtime  # type: ignore[no-any-return]


def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
