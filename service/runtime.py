"""What the app holds while it serves: the bundle, the store, the pipeline, the metrics."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from service.bundle import LoadedBundle
from service.bundle_lifecycle import VERSION_PATTERN, BundleLifecycle
from service.bundle_pointer import ActiveVersionPointer
from service.bundle_watch import ActiveVersionWatcher
from service.contracts.manifest import BundleIntegrityError, confined_bundle_dir
from service.device.plan import plan_scoring
from service.errors import BundleNotFoundError, ServiceNotReady, StoreError
from service.gpu_memory import gpu_memory_collector
from service.metrics import ServiceMetrics
from service.observer import ServiceObserver, observe_breaker
from service.ranking.user_cache import UserStateCache
from service.served_bundle import ServedBundle, ServingParts, serve_bundle
from service.settings import Settings
from service.stores import RankingStore, RedisStoreConfig
from service.tracing import NoTracer, StageTracer

log = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    """The service's state: the served bundle (behind its lifecycle), metrics and observer.

    ``bundle``, ``store`` and ``pipeline`` are those of the bundle served now; a request reads
    ``pipeline`` once and finishes on that bundle even if another is activated meanwhile.
    """

    settings: Settings
    lifecycle: BundleLifecycle
    metrics: ServiceMetrics
    observer: ServiceObserver
    pointer: ActiveVersionPointer | None = None
    watcher: ActiveVersionWatcher | None = None
    warmed: bool = False

    @property
    def served(self) -> ServedBundle:
        return self.lifecycle.served

    @property
    def bundle(self) -> LoadedBundle:
        return self.lifecycle.served.bundle

    @property
    def store(self) -> RankingStore:
        return self.lifecycle.served.store

    @property
    def pipeline(self) -> ServedBundle:
        """What ranks a request: the served bundle, counting the requests it holds."""
        return self.lifecycle.served

    @classmethod
    async def start(
        cls, settings: Settings, metrics: ServiceMetrics, tracer: StageTracer | None = None
    ) -> ServiceRuntime:
        """Load, verify and warm the bundle, open the store; with Redis, follow the active
        bundle version it names (unless ``REASEQ_BUNDLE_VERSION`` pins one)."""
        config = settings.store_config()
        pointer = ActiveVersionPointer(config) if isinstance(config, RedisStoreConfig) else None
        follows = (
            pointer is not None
            and settings.bundle_watch_interval_s > 0
            and settings.bundle_version is None
        )
        observer = ServiceObserver(metrics, tracer or NoTracer(), settings.store)
        cache = UserStateCache(
            int(settings.user_cache_mb * 2**20), on_resize=metrics.user_cache_bytes.set
        )
        try:
            plan = await asyncio.to_thread(plan_scoring, settings)
            log.info("scoring on the %s", plan.describe())
            parts = ServingParts(settings, plan, observer, cache)
            pointed = await _pointed_version(pointer) if follows else None
            bundle = await _load_bundle(parts, metrics, pointed)
        except BaseException:
            if pointer is not None:
                await pointer.close()
            raise
        collector = gpu_memory_collector(bundle.sessions.values(), plan.cuda_devices)
        if collector is not None:
            metrics.add_collector(collector)
        served = serve_bundle(bundle, parts)
        try:
            await asyncio.to_thread(served.batcher.runner.warm_up)
        except BaseException:
            await served.close()
            if pointer is not None:
                await pointer.close()
            raise

        def observe(new: ServedBundle) -> None:
            observe_breaker(new.store, metrics, settings.store)

        observe(served)
        lifecycle = BundleLifecycle(served, parts, metrics, on_swap=observe, pointer=pointer)
        watcher = None
        if follows:
            assert pointer is not None
            watcher = ActiveVersionWatcher(pointer, lifecycle, settings.bundle_watch_interval_s)
            watcher.start()
        metrics.bundle_served(bundle.version)
        metrics.ready.set(1)
        log.info("serving bundle %s with the %s store", bundle.version, settings.store)
        return cls(settings, lifecycle, metrics, observer, pointer, watcher, warmed=True)

    async def unready_reason(self) -> str | None:
        """Why the service should not take traffic, or None when it should (kept in the
        ``reaseq_ready`` gauge, so Prometheus sees what the last probe saw)."""
        reason = await self._unready_reason()
        self.metrics.ready.set(0 if reason else 1)
        return reason

    async def _unready_reason(self) -> str | None:
        # The store is not part of readiness: without it the service still answers, degraded,
        # from the bundle alone, and a shared store's outage would otherwise take every replica
        # out of service at once. Its state is reported beside (store_reachable, store_error).
        if not self.warmed:
            return "bundle not warmed up"
        return None

    async def store_error(self) -> StoreError | None:
        """None when the store answers a ping now, else why not (an open circuit breaker
        answers at once)."""
        error = await self.store.check()
        self.metrics.store_up.labels(store=self.settings.store).set(0 if error else 1)
        return error

    async def close(self) -> None:
        self.metrics.ready.set(0)
        if self.watcher is not None:
            await self.watcher.close()
        await self.lifecycle.close()
        if self.pointer is not None:
            await self.pointer.close()


async def _pointed_version(pointer: ActiveVersionPointer | None) -> str | None:
    """The active version the store names, when it can be read now."""
    if pointer is None:
        return None
    try:
        return await pointer.read()
    except StoreError as error:
        log.warning("starting without the active bundle version: %s", error)
        return None


async def _pointed_bundle(parts: ServingParts, version: str) -> LoadedBundle | None:
    """The bundle the store's active version names, when it is here and sound; a replica
    (re)started after an activation then serves what the others serve."""
    bundle_dir = parts.settings.bundle_root / version
    if not VERSION_PATTERN.fullmatch(version) or not bundle_dir.is_dir():
        log.warning("active bundle %s is not under %s: serving CURRENT", version, bundle_dir.parent)
        return None
    try:
        bundle_dir = confined_bundle_dir(parts.settings.bundle_root, version)
        bundle = await asyncio.to_thread(parts.load, bundle_dir)
        await asyncio.to_thread(bundle.warm_up)
    except Exception as error:
        log.warning("active bundle %s cannot be served (%s): serving CURRENT", version, error)
        return None
    return bundle


async def _load_bundle(
    parts: ServingParts, metrics: ServiceMetrics, pointed: str | None = None
) -> LoadedBundle:
    """Resolve, load, verify and warm the bundle (the store's active version when ``pointed``
    names a sound one here), counting the outcome by result."""
    if pointed is not None:
        bundle = await _pointed_bundle(parts, pointed)
        if bundle is not None:
            metrics.bundle_loads.labels(result="success").inc()
            return bundle
    try:
        bundle_dir = parts.settings.resolve_bundle_dir()
        bundle = await asyncio.to_thread(parts.load, bundle_dir)
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


async def get_runtime(request: Request) -> ServiceRuntime:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise ServiceNotReady("the service is starting: no bundle loaded yet")
    return runtime  # type: ignore[no-any-return]


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
