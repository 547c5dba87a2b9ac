"""Micro-batching: concurrent requests are scored together as one jagged batch.

Requests wait in a queue ordered by deadline (earliest first; no deadline last, then arrival).
Each of ``workers`` scoring threads takes a batch when it is free: the queued requests, most
urgent first, up to ``max_candidates`` candidates in all (a request larger than that goes alone).
While the threads are busy, requests pile up and the next batch is larger: under load batching
comes by itself, and an idle service adds no wait at all, except a short adaptive one: when
requests have recently been arriving closer together than ``max_wait``, a free thread waits that
long (at most ``max_wait``, never past a deadline) for a companion, since one batch of two costs
much less than two batches of one.

The batch's stage timings go to the metrics; its spans and log lines join the trace of the
request that opened it. A request whose deadline passed while it queued is answered with
:class:`DeadlineExceeded` instead of being scored; scoring itself is never cut short. A cancelled
request (its client left) leaves the queue.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from service.errors import DeadlineExceeded
from service.ranking.observer import NO_OBSERVER, RankingObserver
from service.ranking.scoring import ScoreResult, ScoringRequest, ScoringRunner
from service.threads import lower_thread_priority

log = logging.getLogger(__name__)

_GAP_SMOOTHING = 0.2  # weight of the newest inter-arrival gap in its moving average


@dataclass(frozen=True, slots=True)
class BatchingConfig:
    max_candidates: int = 4096
    """Most candidates in one batch (a single larger request is scored alone)."""
    max_wait_s: float = 0.001
    """Longest a free scoring thread waits for more requests to join a batch."""
    workers: int = 1
    """Scoring threads; each scores one batch at a time."""
    thread_niceness: int = 0
    """How far below the event loop's priority the scoring threads run (Linux)."""


@dataclass(order=True)
class _Queued:
    deadline: float
    order: int
    request: ScoringRequest = field(compare=False)
    future: asyncio.Future[ScoreResult] = field(compare=False)
    enqueued: float = field(compare=False)
    context: contextvars.Context = field(compare=False)


class MicroBatcher:
    """Gathers concurrent :class:`ScoringRequest` into batches for a :class:`ScoringRunner`."""

    def __init__(
        self,
        runner: ScoringRunner,
        config: BatchingConfig = BatchingConfig(),
        observer: RankingObserver = NO_OBSERVER,
    ) -> None:
        self.runner = runner
        self.config = config
        self._observer = observer
        self._queue: list[_Queued] = []
        self._queued_candidates = 0
        self._arrivals = itertools.count()
        self._wakeup: asyncio.Event | None = None
        self._executor = ThreadPoolExecutor(
            config.workers,
            thread_name_prefix="scoring",
            initializer=partial(lower_thread_priority, config.thread_niceness),
        )
        self._workers: list[asyncio.Task[None]] = []
        self._last_arrival = 0.0
        self._mean_gap = math.inf

    def start(self) -> None:
        """Start the scoring loops on the running event loop."""
        if self._workers:
            return
        self._wakeup = asyncio.Event()
        self._workers = [
            asyncio.create_task(self._work(), name=f"batcher-{i}")
            for i in range(self.config.workers)
        ]

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        for queued in self._queue:
            if not queued.future.done():
                queued.future.set_exception(DeadlineExceeded("the service is shutting down"))
        self._queue.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.runner.close()

    async def score(self, request: ScoringRequest, deadline: float | None = None) -> ScoreResult:
        """Score ``request`` in a batch; ``deadline`` is a ``time.monotonic()`` instant."""
        if not self._workers or self._wakeup is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        now = time.monotonic()
        self._note_arrival(now)
        future: asyncio.Future[ScoreResult] = asyncio.get_running_loop().create_future()
        queued = _Queued(
            math.inf if deadline is None else deadline,
            next(self._arrivals),
            request,
            future,
            now,
            contextvars.copy_context(),
        )
        heapq.heappush(self._queue, queued)
        self._queued_candidates += request.size
        self._observer.scoring_queued()
        self._wakeup.set()
        try:
            return await future
        except asyncio.CancelledError:
            if self._remove(queued):
                self._observer.scoring_abandoned()
            raise

    def _note_arrival(self, now: float) -> None:
        if self._last_arrival:
            gap = now - self._last_arrival
            self._mean_gap = (
                gap
                if math.isinf(self._mean_gap)
                else (1 - _GAP_SMOOTHING) * self._mean_gap + _GAP_SMOOTHING * gap
            )
        self._last_arrival = now

    def _remove(self, queued: _Queued) -> bool:
        try:
            self._queue.remove(queued)
        except ValueError:
            return False
        heapq.heapify(self._queue)
        self._queued_candidates -= queued.request.size
        return True

    async def _work(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._gather_companions()
            batch = self._take()
            if not batch:
                continue
            started = time.monotonic()
            self._observer.batch_started(len(batch), sum(q.request.size for q in batch))
            for queued in batch:
                self._observer.scoring_started(started - queued.enqueued)
                queued.request.waited_ms = 1000.0 * (started - queued.enqueued)
                queued.request.batch_requests = len(batch)
            try:
                # The batch runs in its first request's context: its stage spans and log lines
                # belong to that request's trace.
                results = await loop.run_in_executor(
                    self._executor,
                    batch[0].context.run,
                    self._score_timed,
                    [q.request for q in batch],
                )
            except Exception as error:  # a failed batch fails its requests, not the loop
                log.exception("scoring a batch of %d requests failed", len(batch))
                for queued in batch:
                    if not queued.future.done():
                        queued.future.set_exception(error)
                continue
            batch_ms = 1000.0 * (time.monotonic() - started)
            for queued, result in zip(batch, results, strict=True):
                queued.request.batch_ms = batch_ms
                if not queued.future.done():
                    queued.future.set_result(result)

    def _score_timed(self, requests: list[ScoringRequest]) -> list[ScoreResult]:
        """The runner's scoring of one batch, in the scoring thread, with its wall and CPU time
        set on every request (a batch's time between the threads is ``batch_ms`` less these)."""
        wall, cpu = time.perf_counter(), time.thread_time()
        results = self.runner.score_batch(requests)
        scored_ms = 1000.0 * (time.perf_counter() - wall)
        scored_cpu_ms = 1000.0 * (time.thread_time() - cpu)
        for request in requests:
            request.scored_ms, request.scored_cpu_ms = scored_ms, scored_cpu_ms
        return results

    async def _gather_companions(self) -> None:
        """Wait briefly for more requests when that pays: arrivals are frequent and the batch
        has room; never past the most urgent request's deadline."""
        wait = min(self.config.max_wait_s, self._mean_gap)
        if (
            wait <= 0
            or wait >= self.config.max_wait_s
            or len(self._queue) != 1
            or self._queued_candidates >= self.config.max_candidates
        ):
            return
        slack = self._queue[0].deadline - time.monotonic()
        await asyncio.sleep(max(0.0, min(wait, slack)))

    def _take(self) -> list[_Queued]:
        """The most urgent requests up to the candidate bound; expired ones are answered."""
        batch: list[_Queued] = []
        candidates = 0
        now = time.monotonic()
        skipped: list[_Queued] = []
        while self._queue:
            queued = heapq.heappop(self._queue)
            if queued.future.done():  # cancelled while queued
                self._queued_candidates -= queued.request.size
                continue
            if queued.deadline <= now:
                self._queued_candidates -= queued.request.size
                self._observer.scoring_abandoned()
                queued.future.set_exception(
                    DeadlineExceeded(
                        f"the request's budget ran out after {1000 * (now - queued.enqueued):.0f}"
                        " ms waiting for a scoring thread; retry, or raise timeout_ms"
                    )
                )
                continue
            if batch and candidates + queued.request.size > self.config.max_candidates:
                skipped.append(queued)
                break
            batch.append(queued)
            candidates += queued.request.size
            self._queued_candidates -= queued.request.size
        for queued in skipped:
            heapq.heappush(self._queue, queued)
        return batch

    @property
    def queued(self) -> int:
        return len(self._queue)
