"""A tiny dataset and generators trained on it, shared by the GBR tests (one thread: the
machine's cores are shared)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr.checkpoint import GBRModel
from offline.gbr.train import GBRTrainConfig, train_gbr
from tests.support.gbr import SMALL_NET, unit_vectors

torch.set_num_threads(1)


@pytest.fixture(scope="package")
def semantic(tiny: tuple[Dataset, GroundTruth]) -> np.ndarray:
    return unit_vectors(len(tiny[0].catalogue), 16)


@pytest.fixture(scope="package")
def item_model(tiny: tuple[Dataset, GroundTruth], semantic: np.ndarray) -> GBRModel:
    config = GBRTrainConfig(tokens="items", epochs=2, max_slots=8, **SMALL_NET)
    return train_gbr(tiny[0], semantic, config, until_ts=tiny[0].split_ts)


@pytest.fixture(scope="package")
def semantic_model(tiny: tuple[Dataset, GroundTruth], semantic: np.ndarray) -> GBRModel:
    config = GBRTrainConfig(tokens="semantic", codes=16, epochs=2, max_slots=8, **SMALL_NET)
    return train_gbr(tiny[0], semantic, config, until_ts=tiny[0].split_ts)
