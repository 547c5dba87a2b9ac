"""Canonical catalogue and event data, and the synthetic generator that produces it."""

from offline.data.canonical import Behaviours, Catalogue, Dataset, Impressions
from offline.data.synthetic import DEFAULT_END_TS, GroundTruth, SyntheticConfig, generate

__all__ = [
    "DEFAULT_END_TS",
    "Behaviours",
    "Catalogue",
    "Dataset",
    "GroundTruth",
    "Impressions",
    "SyntheticConfig",
    "generate",
]
