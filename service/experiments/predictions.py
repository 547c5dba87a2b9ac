"""The prediction log's record of an answer (:mod:`service.experiments.records`), built from
the query and the ranking that answered it."""

from __future__ import annotations

import time
from collections.abc import Mapping

from service.experiments.records import RECORD_FORMAT, PredictionRecord
from service.ranking import Ranking, RankQuery

Context = Mapping[str, str | bool | int | float]


def prediction_record(
    query: RankQuery,
    ranking: Ranking,
    context: Context | None,
    experiment_version: int | None = None,
    shadow: bool = False,
) -> PredictionRecord:
    """One answer (or one shadow arm's ranking) of ``query``; items and scores in the order
    returned, so an item's position is its index."""
    record: PredictionRecord = {
        "kind": "prediction",
        "format": RECORD_FORMAT,
        "ts": time.time(),
        "request_id": query.request_id,
        "user_id": query.user_id,
        "experiment": ranking.experiment,
        "experiment_version": experiment_version,
        "arm": ranking.arm,
        "shadow": shadow,
        "bundle_version": ranking.bundle_version,
        "items": [item.item_id for item in ranking.items],
        "scores": [item.score for item in ranking.items],
        "candidates": len(query.candidates),
        "degraded": [reason.value for reason in ranking.degraded],
    }
    if context:
        record["context"] = dict(context)
    return record
