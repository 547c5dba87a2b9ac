"""A local Ray for the pipelines' tests, a generator trained on the tiny dataset and a bundle whose
item table covers its catalogue."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import ray.data
import torch

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr.checkpoint import GBRModel
from offline.gbr.train import GBRTrainConfig, train_gbr
from tests.support.bundles import build_bundle
from tests.support.gbr import SMALL_NET, unit_vectors

# One thread, as each Ray worker has: the single-process reference multiplies the same way.
torch.set_num_threads(1)

BUNDLE_DIM = 8


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray of two CPUs for the module's tests, shut down after them."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="package")
def item_model(tiny: tuple[Dataset, GroundTruth]) -> GBRModel:
    semantic = unit_vectors(len(tiny[0].catalogue), 16)
    net: dict[str, Any] = SMALL_NET
    config = GBRTrainConfig(tokens="items", epochs=2, max_slots=8, **net)
    return train_gbr(tiny[0], semantic, config, until_ts=tiny[0].split_ts)


@pytest.fixture(scope="package")
def bundle_dir(tiny: tuple[Dataset, GroundTruth], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle (version ``scale-1``) whose items are the tiny catalogue's ``i<n>``."""
    root = tmp_path_factory.mktemp("bundles")
    return build_bundle(
        root, version="scale-1", rows=len(tiny[0].catalogue), dim=BUNDLE_DIM, max_sequence=6
    )
