"""What the app holds while it serves: the bundle, the store, the pipeline, the metrics."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.bundle import LoadedBundle
from service.contracts.manifest import BundleIntegrityError
from service.errors import BundleNotFoundError, ServiceNotReady
from service.gpu_memory import gpu_memory_collector
from service.metrics import ServiceMetrics
from service.observer import ServiceObserver
from service.ranking import GraphRunner, RankingLimits, RankingObserver, RankingPipeline
from service.ranking.batcher import BatchingConfig, MicroBatcher
from service.ranking.user_cache import UserStateCache
from service.settings import Settings
from service.stores import RankingStore, open_store
from service.tracing import NoTracer, StageTracer

log = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    settings: Settings
    bundle: LoadedBundle
    store: RankingStore
    pipeline: RankingPipeline
    batcher: MicroBatcher
    metrics: ServiceMetrics
    observer: RankingObserver
    warmed: bool = False

    @classmethod
    async def start(
        cls, settings: Settings, metrics: ServiceMetrics, tracer: StageTracer | None = None
    ) -> ServiceRuntime:
        """Load, verify and warm the bundle, then open the store."""
        bundle = await _load_bundle(settings, metrics)
        collector = gpu_memory_collector(bundle.sessions.values())
        if collector is not None:
            metrics.add_collector(collector)
        store = open_store(settings.store_config(), bundle)
        limits = RankingLimits(
            max_candidates=settings.max_candidates,
            max_recent_events=settings.max_recent_events,
            default_top_k=settings.default_top_k,
            default_timeout_ms=settings.default_timeout_ms,
        )
        observer = ServiceObserver(metrics, tracer or NoTracer(), settings.store)
        cache = UserStateCache(
            int(settings.user_cache_mb * 2**20), on_resize=metrics.user_cache_bytes.set
        )
        runner = GraphRunner(
            bundle,
            settings.graph_mode,
            observer=observer,
            cache=cache,
            attention_threads=settings.attention_threads,
        )
        batcher = MicroBatcher(
            runner,
            BatchingConfig(
                max_candidates=settings.batch_max_candidates,
                max_wait_s=settings.batch_max_wait_ms / 1000.0,
                workers=settings.scoring_threads,
            ),
            observer,
        )
        batcher.start()
        pipeline = RankingPipeline(bundle, store, batcher, limits, observer=observer, cache=cache)
        metrics.bundle_served(bundle.version)
        metrics.ready.set(1)
        log.info("serving bundle %s with the %s store", bundle.version, settings.store)
        return cls(settings, bundle, store, pipeline, batcher, metrics, observer, warmed=True)

    async def unready_reason(self) -> str | None:
        """Why the service should not take traffic, or None when it should (kept in the
        ``reaseq_ready`` gauge, so Prometheus sees what the last probe saw)."""
        reason = await self._unready_reason()
        self.metrics.ready.set(0 if reason else 1)
        return reason

    async def _unready_reason(self) -> str | None:
        if not self.warmed:
            return "bundle not warmed up"
        if not await self.store.ping():
            return f"{self.settings.store} store does not answer"
        return None

    async def close(self) -> None:
        self.metrics.ready.set(0)
        await self.batcher.close()
        await self.store.close()


async def _load_bundle(settings: Settings, metrics: ServiceMetrics) -> LoadedBundle:
    """Resolve, load, verify and warm the bundle, counting the outcome by result."""
    try:
        bundle_dir = settings.resolve_bundle_dir()
        bundle = await asyncio.to_thread(
            LoadedBundle.load, bundle_dir, settings.onnx_intra_op_threads
        )
        await asyncio.to_thread(bundle.warm_up)
    except BundleNotFoundError:
        metrics.bundle_loads.labels(result="not_found").inc()
        raise
    except BundleIntegrityError:
        metrics.bundle_loads.labels(result="integrity_error").inc()
        raise
    except Exception:
        metrics.bundle_loads.labels(result="error").inc()
        raise
    metrics.bundle_loads.labels(result="success").inc()
    return bundle


def get_runtime(request: Request) -> ServiceRuntime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ServiceNotReady("the service is starting: no bundle loaded yet")
    return runtime  # type: ignore[no-any-return]


def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
