"""One bundle in service: the loaded bundle with the store, scoring threads and pipeline bound to
it, swapped as one object so that a request never mixes two bundles.

Each request holds the :class:`ServedBundle` it started on until it is answered (``in_use``);
after a swap, the old one is retired once those requests are done: its micro-batcher and store
are closed only then.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from service.bundles.loaded import LoadedBundle
from service.device.plan import ScoringPlan, open_runner
from service.ranking import Ranking, RankingObserver, RankingPipeline, RankQuery
from service.ranking.batcher import BatchingConfig, MicroBatcher
from service.ranking.user_cache import UserStateCache
from service.settings import Settings
from service.stores import RankingStore, open_store

log = logging.getLogger(__name__)

_DRAIN_POLL_S = 0.01


@dataclass(frozen=True)
class ServingParts:
    """What every served bundle shares: settings, the scoring plan (host or device path), the
    ranking observer, the per-user cache (keyed by bundle version, so it is safe across
    bundles)."""

    settings: Settings
    plan: ScoringPlan
    observer: RankingObserver
    cache: UserStateCache

    def load(self, bundle_dir: Path) -> LoadedBundle:
        """Read and verify a bundle, its sessions on the plan's onnxruntime providers (blocks:
        call it off the event loop)."""
        return LoadedBundle.load(
            bundle_dir,
            self.settings.onnx_intra_op_threads,
            self.plan.providers,
            float32_items_max_bytes=int(self.settings.item_table_float32_mb * 2**20),
        )


@dataclass
class ServedBundle:
    """A bundle with its store, micro-batcher and pipeline; counts the requests using it."""

    bundle: LoadedBundle
    store: RankingStore
    batcher: MicroBatcher
    pipeline: RankingPipeline
    activated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _in_flight: int = 0

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def in_use(self) -> Iterator[ServedBundle]:
        """Count a request as using this bundle until the block ends."""
        self._in_flight += 1
        try:
            yield self
        finally:
            self._in_flight -= 1

    async def rank(self, query: RankQuery) -> Ranking:
        with self.in_use():
            return await self.pipeline.rank(query)

    async def close(self) -> None:
        await self.batcher.close()
        await self.store.close()

    async def retire(self, drain_timeout_s: float) -> None:
        """Close once no request uses this bundle any more (or after ``drain_timeout_s``)."""
        deadline = time.monotonic() + drain_timeout_s
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(_DRAIN_POLL_S)
        if self._in_flight:
            log.warning(
                "closing bundle %s with %d requests still in flight after %.0f s",
                self.version,
                self._in_flight,
                drain_timeout_s,
            )
        await self.close()
        log.info("retired bundle %s", self.version)


def serve_bundle(bundle: LoadedBundle, parts: ServingParts) -> ServedBundle:
    """Open the store for ``bundle`` and start its scoring threads (on the running loop).

    Raises what the store raises when the bundle does not fit it (``ValueError`` for an embedded
    snapshot of other dimensions)."""
    settings = parts.settings
    store = open_store(settings.store_config(bundle.directory), bundle)
    runner = open_runner(bundle, parts.plan, settings, parts.observer, parts.cache)
    batcher = MicroBatcher(
        runner,
        BatchingConfig(
            max_candidates=settings.batch_max_candidates,
            max_wait_s=settings.batch_max_wait_ms / 1000.0,
            workers=settings.scoring_threads,
            thread_niceness=parts.plan.thread_niceness,
        ),
        parts.observer,
    )
    batcher.start()
    pipeline = RankingPipeline(
        bundle,
        store,
        batcher,
        settings.request_limits(),
        observer=parts.observer,
        cache=parts.cache,
    )
    return ServedBundle(bundle, store, batcher, pipeline)
