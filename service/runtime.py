"""What the app holds while it serves: the served bundle (its store and pipeline), the running
experiment (if any), the metrics."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from service.bundles.active_version import ActiveVersionPointer, VersionPointer
from service.bundles.lifecycle import VERSION_PATTERN, BundleLifecycle
from service.bundles.loaded import LoadedBundle
from service.bundles.served import ServedBundle, ServingParts, serve_bundle
from service.bundles.watch import ActiveVersionWatcher
from service.contracts.manifest import BundleIntegrityError, confined_bundle_dir
from service.device.plan import plan_scoring
from service.errors import BundleNotFoundError, StoreError
from service.experiments.experiment import ExperimentServices
from service.experiments.lifecycle import ExperimentLifecycle
from service.experiments.prediction_log import PredictionLog, open_prediction_log, should_log
from service.experiments.shadow import ShadowScoring
from service.experiments.shared import SharedExperiment
from service.experiments.watch import ExperimentFileWatcher
from service.observability.gpu_memory import gpu_memory_collector
from service.observability.metrics import ServiceMetrics
from service.observability.ranking import ServiceObserver, observe_breaker
from service.observability.tracing import NoTracer, StageTracer
from service.ranking.user_cache import UserStateCache
from service.settings import Settings
from service.stores import RankingStore, RedisStoreConfig
from service.worker_state import FileVersionPointer

log = logging.getLogger(__name__)


@dataclass
class ServiceRuntime:
    """The service's state: the served bundle (behind its lifecycle), metrics and observer.

    ``served``, ``bundle`` and ``store`` are those of the bundle served now; a request reads
    ``served`` once and finishes on that bundle even if another is activated meanwhile.
    """

    settings: Settings
    lifecycle: BundleLifecycle
    metrics: ServiceMetrics
    observer: ServiceObserver
    pointer: VersionPointer | None = None
    #: Whether a watcher follows the active version in the store once warmed up.
    follows: bool = False
    watcher: ActiveVersionWatcher | None = None
    #: False until :meth:`warm_up` has finished: readiness reports the bundle not warmed up.
    warmed: bool = False
    #: Where answers and outcomes are logged; None with REASEQ_PREDICTION_LOG=off.
    prediction_log: PredictionLog | None = None
    #: The experiment of this worker: ``experiments.running``, None while none runs.
    experiments: ExperimentLifecycle = field(kw_only=True)
    #: The log of answers given without an experiment (REASEQ_PREDICTION_LOG=always), else None.
    answer_log: PredictionLog | None = None
    experiment_watcher: ExperimentFileWatcher | None = None
    #: The admin endpoint's experiment shared with the service's other workers, when it has
    #: several (REASEQ_WORKER_STATE_DIR).
    shared_experiment: SharedExperiment | None = None

    @property
    def served(self) -> ServedBundle:
        return self.lifecycle.served

    @property
    def bundle(self) -> LoadedBundle:
        return self.lifecycle.served.bundle

    @property
    def store(self) -> RankingStore:
        return self.lifecycle.served.store

    @classmethod
    async def load(
        cls, settings: Settings, metrics: ServiceMetrics, tracer: StageTracer | None = None
    ) -> ServiceRuntime:
        """Load and verify the bundle, open the store, start the scoring threads; with Redis,
        take the active bundle version it names (unless ``REASEQ_BUNDLE_VERSION`` pins one).

        The runtime is not warmed yet: readiness says so until :meth:`warm_up` has run."""
        config = settings.store_config()
        prediction_log = open_prediction_log(settings, config, metrics.prediction_log)
        pointer: VersionPointer | None = None
        if isinstance(config, RedisStoreConfig):
            pointer = ActiveVersionPointer(config)
        elif settings.worker_state_dir is not None:
            # The workers of one service follow the version the admin endpoints activated last.
            pointer = FileVersionPointer(settings.worker_state_dir)
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
            if prediction_log is not None:
                await prediction_log.close()
            raise
        collector = gpu_memory_collector(bundle.sessions.values(), plan.cuda_devices)
        if collector is not None:
            metrics.add_collector(collector)

        def observe(new: ServedBundle) -> None:
            observe_breaker(new.store, metrics, settings.store)

        served = serve_bundle(bundle, parts)
        lifecycle = BundleLifecycle(served, parts, metrics, on_swap=observe, pointer=pointer)
        shadows = ShadowScoring(settings.shadow_queue_size, prediction_log)
        experiment_services = ExperimentServices(
            metrics.experiments, shadows, prediction_log, tracer or NoTracer()
        )
        return cls(
            settings,
            lifecycle,
            metrics,
            observer,
            pointer,
            follows=follows,
            prediction_log=prediction_log,
            experiments=ExperimentLifecycle(parts, experiment_services),
            answer_log=prediction_log if should_log(settings, experiment_running=False) else None,
        )

    async def warm_up(self) -> None:
        """Pay the scoring path's one-time costs, then follow the store's active version (with
        Redis) and report ready."""
        await asyncio.to_thread(self.served.batcher.runner.warm_up)
        observe_breaker(self.store, self.metrics, self.settings.store)
        if self.follows:
            assert self.pointer is not None
            self.watcher = ActiveVersionWatcher(
                self.pointer, self.lifecycle, self.settings.bundle_watch_interval_s
            )
            self.watcher.start()
        self.metrics.bundle_served(self.bundle.version)
        self.experiments.shadows.start()
        if self.settings.experiment_file is not None:
            # Read before reporting ready: a replica starts with the fleet's experiment.
            self.experiment_watcher = ExperimentFileWatcher(
                self.settings.experiment_file,
                self.experiments,
                self.settings.experiment_watch_interval_s,
            )
            await self.experiment_watcher.poll()
            self.experiment_watcher.start()
        if self.settings.worker_state_dir is not None:
            # Read before reporting ready: a restarted worker comes back with the experiment.
            self.shared_experiment = SharedExperiment(
                self.settings.worker_state_dir, self.experiments
            )
            await self.shared_experiment.poll()
            self.shared_experiment.start_polling()
        self.warmed = True
        self.metrics.ready.set(1)
        log.info("serving bundle %s with the %s store", self.bundle.version, self.settings.store)

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
        if self.experiment_watcher is not None:
            await self.experiment_watcher.close()
        if self.shared_experiment is not None:
            await self.shared_experiment.close()
        await self.experiments.close()
        await self.lifecycle.close()
        if self.pointer is not None:
            await self.pointer.close()
        if self.prediction_log is not None:
            await self.prediction_log.close()


async def _pointed_version(pointer: VersionPointer | None) -> str | None:
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
