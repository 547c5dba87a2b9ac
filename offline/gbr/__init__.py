"""Generative behaviour reasoning (GBR): a masked diffusion language model over users' behaviour
sequences that infers *beyond-log* behaviours, K per user, for the ranker to attend over.

* :mod:`~offline.gbr.sequences` users' distinct items in order of first engagement;
* :mod:`~offline.gbr.tokens`, :mod:`~offline.gbr.semantic_ids` item tokens or semantic IDs;
* :mod:`~offline.gbr.model`, :mod:`~offline.gbr.train` the LLaDA-style model and its training;
* :mod:`~offline.gbr.generate` unmasking with low-confidence remasking;
* :mod:`~offline.gbr.fusion`, :mod:`~offline.gbr.log_prior` blocks blended with the co-occurrence
  of the generator's training logs, which its checkpoint keeps;
* :mod:`~offline.gbr.examples` leak-free blocks for the ranker's training examples;
* :mod:`~offline.gbr.nearline` the job that writes blocks to Redis or the embedded snapshot;
* :mod:`~offline.gbr.evaluate` beyond-log recall against baselines, consistency and cost;
* :mod:`~offline.gbr.rolling` the same rolled through a period, and the blend chosen there.
"""

from offline.gbr.checkpoint import GBRModel
from offline.gbr.evaluate import evaluate_generator
from offline.gbr.examples import UserFolds, generated_blocks_for_examples, train_user_folds
from offline.gbr.generate import (
    GeneratedItems,
    GenerationConfig,
    generate_for_prefixes,
    generate_for_users,
)
from offline.gbr.nearline import run_nearline
from offline.gbr.train import GBRTrainConfig, train_gbr

__all__ = [
    "GBRModel",
    "GBRTrainConfig",
    "GeneratedItems",
    "GenerationConfig",
    "UserFolds",
    "evaluate_generator",
    "generate_for_prefixes",
    "generate_for_users",
    "generated_blocks_for_examples",
    "run_nearline",
    "train_gbr",
    "train_user_folds",
]
