"""Shadow scoring: a shadow arm ranks every answered request too, off the critical path.

Once the answer to the caller is built, one job per shadow arm goes on a bounded queue
(``REASEQ_SHADOW_QUEUE_SIZE``) without waiting; one background task works it, one job at a time,
each on the shadow arm's own bundle (its own scoring threads). A full queue drops the job and
counts it (``reaseq_shadow_dropped_total``); a failed scoring is counted
(``reaseq_shadow_errors_total``) and logged at most once a minute per arm, without a traceback.
Neither can delay or fail the answer. A shadow's ranking goes to the prediction log with
``shadow: true``, never to the caller.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass

from service import tasks
from service.bundles.served import ServedBundle
from service.experiments.prediction_log import PredictionLog
from service.experiments.predictions import Context, prediction_record
from service.observability.experiment_metrics import ShadowMetrics, observe_scores
from service.ranking import RankQuery

log = logging.getLogger(__name__)

#: At most one log line per shadow arm this often; the failures in between are counted in it.
FAILURE_LOG_INTERVAL_S = 60.0


@dataclass(eq=False)
class ShadowArm:
    """A shadow arm of a running experiment, with the bundle it scores on."""

    experiment: str
    experiment_version: int
    name: str
    served: ServedBundle
    metrics: ShadowMetrics
    #: Set when its experiment is replaced or stopped: queued jobs are skipped from then on.
    retired: bool = False


@dataclass(frozen=True, slots=True)
class ShadowJob:
    arm: ShadowArm
    query: RankQuery
    context: Context | None


class ShadowScoring:
    """The queue of shadow jobs and the task that works it."""

    def __init__(self, queue_size: int, predictions: PredictionLog | None = None) -> None:
        self._queue: asyncio.Queue[ShadowJob] = asyncio.Queue(maxsize=queue_size)
        self._predictions = predictions
        self._failures = _FailureLog(FAILURE_LOG_INTERVAL_S)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name="shadow-scoring")

    def submit(self, arm: ShadowArm, query: RankQuery, context: Context | None) -> None:
        """Queue ``arm``'s scoring of ``query``, or drop and count it when the queue is full."""
        try:
            self._queue.put_nowait(ShadowJob(arm, query, context))
        except asyncio.QueueFull:
            arm.metrics.dropped.inc()

    async def join(self) -> None:
        """Wait until every queued job has been scored (or skipped)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._score(job)
            finally:
                self._queue.task_done()

    async def _score(self, job: ShadowJob) -> None:
        arm = job.arm
        if arm.retired:
            return
        # Explanations are for the caller; the shadow's ranking is only logged.
        query = dataclasses.replace(job.query, explain=False)
        try:
            ranking = await arm.served.rank(query)
        except Exception as error:
            arm.metrics.errors.inc()
            self._failures.failed(arm, query.request_id, error)
            return
        ranking = dataclasses.replace(ranking, experiment=arm.experiment, arm=arm.name)
        observe_scores(arm.metrics.score, ranking)
        if self._predictions is not None:
            record = prediction_record(
                query, ranking, job.context, arm.experiment_version, shadow=True
            )
            self._predictions.record(record)

    async def close(self) -> None:
        """Stop working the queue; jobs still queued are dropped."""
        await tasks.stop(self._task)
        self._task = None


class _FailureLog:
    """Logs a shadow arm's failures at most once per ``interval_s``, counting the rest."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._next: dict[tuple[str, str], float] = {}
        self._unlogged: dict[tuple[str, str], int] = {}

    def failed(self, arm: ShadowArm, request_id: str, error: Exception) -> None:
        key = (arm.experiment, arm.name)
        now = time.monotonic()
        if now < self._next.get(key, 0.0):
            self._unlogged[key] = self._unlogged.get(key, 0) + 1
            return
        self._next[key] = now + self._interval_s
        log.warning(
            "shadow arm %s of experiment %s failed to rank request %s (%d failures since the "
            "last such line): %s: %s",
            arm.name,
            arm.experiment,
            request_id,
            self._unlogged.pop(key, 0),
            type(error).__name__,
            error,
            extra={
                "request_id": request_id,
                "experiment": arm.experiment,
                "arm": arm.name,
                "shadow": True,
            },
        )
