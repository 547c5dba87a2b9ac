"""Ranking: behaviour assembly, graph execution, top-k and explanations."""

from service.ranking.limits import RequestLimits
from service.ranking.observer import NO_OBSERVER, FetchOutcome, RankingObserver, Stage
from service.ranking.pipeline import RankingPipeline, RankQuery
from service.ranking.result import Degradation, Ranking
from service.ranking.scoring import GraphMode, GraphRunner

__all__ = [
    "NO_OBSERVER",
    "Degradation",
    "FetchOutcome",
    "GraphMode",
    "GraphRunner",
    "RankQuery",
    "Ranking",
    "RankingObserver",
    "RankingPipeline",
    "RequestLimits",
    "Stage",
]
