"""A small, learnable dataset and one trained + exported ranker shared by the export tests.

Items belong to topics; each user prefers a few topics, behaves mostly on them and clicks
impressions of them far more often. Semantic vectors are noisy topic centroids, so both the ID
and the knowledge path carry the signal. The last tenth of the catalogue launches after the
split time: cold items the ID path cannot know.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from model_export.bundle import export_bundle
from model_export.evaluate import evaluate, random_baseline
from model_export.train import TrainedRanker, train
from offline.data.canonical import Dataset
from service.contracts.manifest import EvaluationMetrics
from tests.support.learnable import FAST_CONFIG, TEST_ENCODER, learnable_dataset


@pytest.fixture(scope="session")
def learnable() -> tuple[Dataset, npt.NDArray[np.float32]]:
    return learnable_dataset()


@pytest.fixture(scope="session")
def trained(learnable: tuple[Dataset, npt.NDArray[np.float32]]) -> TrainedRanker:
    dataset, semantic = learnable
    return train(dataset, semantic, FAST_CONFIG)


@pytest.fixture(scope="session")
def model_metrics(
    learnable: tuple[Dataset, npt.NDArray[np.float32]], trained: TrainedRanker
) -> dict[str, EvaluationMetrics]:
    dataset, _ = learnable
    return {
        "model": evaluate(trained, dataset),
        "random": random_baseline(dataset, FAST_CONFIG.max_seq_len),
    }


@pytest.fixture(scope="session")
def bundle_dir(
    tmp_path_factory: pytest.TempPathFactory,
    learnable: tuple[Dataset, npt.NDArray[np.float32]],
    trained: TrainedRanker,
    model_metrics: dict[str, EvaluationMetrics],
) -> Path:
    dataset, semantic = learnable
    root = tmp_path_factory.mktemp("bundles")
    return export_bundle(trained, dataset, semantic, TEST_ENCODER, model_metrics, root, None)
