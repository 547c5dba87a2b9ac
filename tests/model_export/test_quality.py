"""The ranker learns: it beats a random ranking, and knowledge beats IDs alone.

On the synthetic world, items' clicks follow a latent that their metadata (hence their knowledge
text) largely explains, so a working fusion of semantic vectors must beat the ID-only baseline by
a margin that a model ignoring its semantic path, or a broken attention, could not reach.
"""

from __future__ import annotations

import pytest

from model_export.pipeline import ID_ONLY, MODEL, RANDOM, train_run
from model_export.train import TrainConfig
from offline.data.synthetic import SyntheticConfig, generate
from service.contracts.manifest import EvaluationMetrics


def test_model_beats_random(model_metrics: dict[str, EvaluationMetrics]) -> None:
    model, random = model_metrics["model"], model_metrics["random"]
    assert model.auc > 0.6
    assert model.gauc > 0.6
    assert model.auc > random.auc + 0.1
    assert model.logloss < random.logloss
    assert 0.4 < random.auc < 0.6


@pytest.fixture(scope="module")
def small_metrics() -> dict[str, EvaluationMetrics]:
    dataset = generate(SyntheticConfig.preset("small"))
    return train_run(dataset, TrainConfig(max_seq_len=30, threads=1, progress=False)).metrics


def test_knowledge_beats_ids_beats_random(small_metrics: dict[str, EvaluationMetrics]) -> None:
    model, id_only, random = small_metrics[MODEL], small_metrics[ID_ONLY], small_metrics[RANDOM]
    assert abs(random.auc - 0.5) < 0.03
    assert id_only.auc > random.auc + 0.08
    assert id_only.gauc > random.gauc + 0.08
    assert model.auc > id_only.auc + 0.05
    assert model.gauc > id_only.gauc + 0.05
    assert model.logloss < id_only.logloss < random.logloss


def test_knowledge_carries_cold_items(small_metrics: dict[str, EvaluationMetrics]) -> None:
    cold_model = small_metrics[f"{MODEL}/cold_items"]
    cold_ids = small_metrics[f"{ID_ONLY}/cold_items"]
    assert cold_model.examples > 0
    assert cold_model.auc > 0.62
    assert cold_model.auc > cold_ids.auc + 0.1
