"""The work an experiment adds to each answer, timed in one process: the arm's assignment, its
metrics, the answer's prediction-log record and that record's serialisation (which the log's
writer thread does). Precise where the served comparison is not: a few microseconds against a
noise floor of several percent of a request's CPU time."""

from __future__ import annotations

import dataclasses
import json
import time

import orjson
from prometheus_client import CollectorRegistry

from service.experiments.assignment import ArmAssignment
from service.experiments.config import ExperimentConfig
from service.experiments.predictions import prediction_record
from service.observability.experiment_metrics import ExperimentMetrics
from service.observability.metrics import LATENCY_BUCKETS_S
from service.ranking import Ranking, RankQuery
from service.ranking.result import ScoredItem, Timings


def added_work_us(config: dict[str, object], body: bytes, repeats: int = 5000) -> float:
    """Microseconds per answer of what an experiment adds, for requests like ``body`` (its
    candidates and ``top_k``), under ``config``."""
    request = json.loads(body)
    experiment = ExperimentConfig.model_validate(config)
    assignment = ArmAssignment(experiment)
    metrics = ExperimentMetrics(CollectorRegistry(), LATENCY_BUCKETS_S)
    arms = {arm.name: metrics.arm(experiment.name, arm.name) for arm in experiment.arms}
    candidates: list[str] = request["candidates"]
    shown = candidates[: request.get("top_k") or len(candidates)]
    query = RankQuery("request", request["user_id"], candidates, request.get("top_k"))
    ranking = Ranking(
        "request",
        "bundle",
        [ScoredItem(item, 1.0 / (rank + 2)) for rank, item in enumerate(shown)],
        [],
        Timings(0.0, 0.0, 0.0),
        None,
    )
    started = time.perf_counter()
    for n in range(repeats):
        name, _ = assignment.assign(f"{query.user_id}-{n}")
        arms[name].answered(ranking, 0.005)
        answered = dataclasses.replace(ranking, experiment=experiment.name, arm=name)
        orjson.dumps(prediction_record(query, answered, None, experiment.version))
    return 1e6 * (time.perf_counter() - started) / repeats
