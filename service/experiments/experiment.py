"""A running experiment: its arms' and shadows' loaded bundles, and the answer to one request.

Arms and shadows naming the same bundle version share one :class:`ServedBundle`. A request is
assigned to an arm (:mod:`service.experiments.assignment`), ranked on that arm's bundle, counted
under the arm, logged to the prediction log, and handed to the shadow arms; its log lines and
trace span carry the experiment and the arm.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from service.bundles.served import ServedBundle
from service.experiments.assignment import ArmAssignment
from service.experiments.config import ExperimentConfig
from service.experiments.memory import BundleMemory
from service.experiments.prediction_log import PredictionLog
from service.experiments.predictions import Context, prediction_record
from service.experiments.shadow import ShadowArm, ShadowScoring
from service.observability.experiment_metrics import ArmMetrics, ExperimentMetrics
from service.observability.logs import tag_request
from service.observability.tracing import StageTracer
from service.ranking import Ranking, RankQuery


class ExperimentSource(StrEnum):
    """Where the running configuration came from."""

    ADMIN = "admin"  # PUT /v1/admin/experiment, on this worker
    FILE = "file"  # REASEQ_EXPERIMENT_FILE


@dataclass(frozen=True, slots=True)
class ExperimentBundle:
    """One bundle version loaded for an experiment, and what it costs in memory."""

    served: ServedBundle
    memory: BundleMemory


@dataclass(frozen=True, slots=True)
class ServedArm:
    name: str
    share: float
    bundle: ExperimentBundle
    metrics: ArmMetrics


@dataclass(frozen=True, slots=True)
class ExperimentServices:
    """What every experiment of a worker shares: its metrics, the shadow queue, the
    prediction log (None when off) and the tracer."""

    metrics: ExperimentMetrics
    shadows: ShadowScoring
    predictions: PredictionLog | None
    tracer: StageTracer


class RunningExperiment:
    """An experiment whose bundles are loaded, verified and probed: it answers requests."""

    def __init__(
        self,
        config: ExperimentConfig,
        bundles: dict[str, ExperimentBundle],
        services: ExperimentServices,
        source: ExperimentSource,
    ) -> None:
        self.config = config
        self.source = source
        self.started_at = datetime.now(UTC)
        self.bundles = bundles
        self.assignment = ArmAssignment(config)
        self._services = services
        metrics = services.metrics
        self.arms = {
            arm.name: ServedArm(
                arm.name, arm.share, bundles[arm.bundle], metrics.arm(config.name, arm.name)
            )
            for arm in config.arms
        }
        self.shadows = tuple(
            ShadowArm(
                config.name,
                config.version,
                shadow.name,
                bundles[shadow.bundle].served,
                metrics.shadow(config.name, shadow.name),
            )
            for shadow in config.shadows
        )

    @property
    def name(self) -> str:
        return self.config.name

    async def rank(
        self, query: RankQuery, context: Context | None, requested_arm: str | None
    ) -> Ranking:
        """Answer ``query`` with its arm; raises :class:`service.errors.UnknownArm` when
        ``requested_arm`` names none."""
        name, assigned_by = self.assignment.assign(query.user_id, context, requested_arm)
        arm = self.arms[name]
        services = self._services
        tag_request(self.config.name, name)
        services.tracer.annotate(
            {
                "reaseq.experiment": self.config.name,
                "reaseq.arm": name,
                "reaseq.arm_assigned_by": assigned_by.value,
            }
        )
        started = time.perf_counter()
        ranking = await arm.bundle.served.rank(query)
        arm.metrics.answered(ranking, time.perf_counter() - started)
        ranking = dataclasses.replace(ranking, experiment=self.config.name, arm=name)
        if services.predictions is not None:
            services.predictions.record(
                prediction_record(query, ranking, context, self.config.version)
            )
        for shadow in self.shadows:
            services.shadows.submit(shadow, query, context)
        return ranking

    def retire(self, drain_timeout_s: float) -> list[Coroutine[Any, Any, None]]:
        """Stop the shadow arms' queued jobs and forget the memory series; returns what closes
        each bundle once its requests in flight are done (or after ``drain_timeout_s``)."""
        metrics = self._services.metrics
        for shadow in self.shadows:
            shadow.retired = True
            metrics.bundle_retired(self.config.name, shadow.name)
        for arm in self.arms.values():
            metrics.bundle_retired(self.config.name, arm.name)
        return [bundle.served.retire(drain_timeout_s) for bundle in self.bundles.values()]

    def report_memory(self) -> None:
        """Set each arm's and shadow's bundle memory gauge."""
        metrics = self._services.metrics
        for arm in self.arms.values():
            metrics.bundle_loaded(self.config.name, arm.name, arm.bundle.memory.resident_bytes)
        for config in self.config.shadows:
            memory = self.bundles[config.bundle].memory
            metrics.bundle_loaded(self.config.name, config.name, memory.resident_bytes)

    async def close(self) -> None:
        """Close every bundle now (at shutdown)."""
        for shadow in self.shadows:
            shadow.retired = True
        for bundle in self.bundles.values():
            await bundle.served.close()
