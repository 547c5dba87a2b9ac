"""Ranking: behaviour assembly, graph execution, top-k and explanations."""

from service.ranking.pipeline import RankingLimits, RankingPipeline, RankQuery
from service.ranking.result import Degradation, Ranking
from service.ranking.scoring import GraphMode, GraphRunner

__all__ = [
    "Degradation",
    "GraphMode",
    "GraphRunner",
    "RankQuery",
    "Ranking",
    "RankingLimits",
    "RankingPipeline",
]
