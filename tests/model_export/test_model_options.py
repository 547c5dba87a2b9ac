"""The ranker's options: gated fusion, the self-attention user encoder, early stopping.

Each is exported and checked for parity like the default ranker, and each keeps the promise its
docstring makes (causality, the cold path, the gates' dropout, validation-only selection).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from model_export.bundle import export_bundle
from model_export.dataset import validation_examples
from model_export.evaluate import evaluate
from model_export.model import UserEncoder
from model_export.parity import ParityShape, parity_report
from model_export.train import TrainConfig, TrainedRanker, build_model, train
from offline.data.canonical import Dataset, Impressions
from tests.support.learnable import FAST_CONFIG, TEST_ENCODER, learnable_dataset

Learnable = tuple[Dataset, npt.NDArray[np.float32]]
OPTIONS = replace(FAST_CONFIG, epochs=2, fusion="gate", dropout_max_count=5, user_layers=1)


@pytest.fixture(scope="module")
def gated(learnable: Learnable) -> TrainedRanker:
    dataset, semantic = learnable
    return train(dataset, semantic, OPTIONS)


def test_gated_self_attention_ranker_exports_with_parity(
    gated: TrainedRanker, learnable: Learnable, tmp_path: Path
) -> None:
    dataset, semantic = learnable
    metrics = {"model": evaluate(gated, dataset)}
    assert metrics["model"].auc > 0.6  # it learns, gates and layers included
    bundle = export_bundle(gated, dataset, semantic, TEST_ENCODER, metrics, tmp_path, None)
    shapes = (
        ParityShape(1, 1, 1, 1, empty_generated=True),
        ParityShape(3, 7, 30, 4),
        ParityShape(2, 50, 20, 1, empty_generated=True),
    )
    report = parity_report(bundle, gated, shapes, seed=3)
    assert max(report.values()) <= 1e-4, report


def test_the_causal_encoder_ignores_padding_after_the_sequence() -> None:
    torch.manual_seed(0)
    encoder = UserEncoder(16, layers=2, heads=4).eval()
    sequence = torch.randn(1, 5, 16)
    events, gaps = torch.ones(1, 5, dtype=torch.int64), torch.arange(5)[None, :]
    generated = torch.zeros(1, 1, 16)
    alone = encoder(sequence, events, gaps, generated)
    padded = encoder(
        torch.cat([sequence, torch.randn(1, 3, 16)], dim=1),
        torch.cat([events, torch.zeros(1, 3, dtype=torch.int64)], dim=1),
        torch.cat([gaps, torch.zeros(1, 3, dtype=torch.int64)], dim=1),
        generated,
    )
    for short, long in zip(alone[:2], padded[:2], strict=True):
        torch.testing.assert_close(short, long[:, :5], atol=1e-5, rtol=1e-5)
    # And each position depends on the ones before it, not only on itself.
    changed = sequence.clone()
    changed[0, 0] += torch.randn(16)  # not a constant shift, which layer norm removes
    keys_changed = encoder(changed, events, gaps, generated)[0]
    assert not torch.allclose(keys_changed[0, 4], alone[0][0, 4])


def test_gates_leave_cold_items_to_knowledge_and_drop_only_rare_ids(learnable: Learnable) -> None:
    dataset, semantic = learnable
    counts = np.array([0, 1, 3, 50, 400] + [10] * (len(dataset.catalogue) - 5), dtype=np.int64)
    model = build_model(OPTIONS, semantic, counts)
    items = model.items
    with torch.no_grad():
        items.id_embedding.weight.normal_()
        before = items(torch.tensor([0])).clone()
        items.id_embedding.weight[0] += 5.0  # a cold item's untrained ID must not matter
        torch.testing.assert_close(items(torch.tensor([0])), before)
    items.train()
    torch.manual_seed(1)
    rows = torch.tensor([1, 2, 3, 4])
    dropped = items(rows, id_dropout=1.0, dropout_max_count=5)
    kept = items.eval()(rows)
    # Counts 1 and 3 are at most 5: their IDs are dropped (they look cold); 50 and 400 keep theirs.
    assert not torch.allclose(dropped[:2], kept[:2])
    torch.testing.assert_close(dropped[2:], kept[2:])


def test_early_stopping_looks_at_validation_only() -> None:
    dataset, semantic = learnable_dataset(n_items=200, n_users=80, n_requests=1200, seed=2)
    ts = dataset.impressions.ts
    test_ts = int(np.quantile(ts[ts >= dataset.split_ts], 0.5))
    split = replace(dataset, test_ts=test_ts)
    config = TrainConfig(**{**FAST_CONFIG.__dict__, "epochs": 3, "patience": 1})
    first = train(split, semantic, config)
    assert first.best_epoch is not None and first.validation_gauc is not None
    validation = validation_examples(split, config.max_seq_len)
    assert validation is not None and (validation.ts < test_ts).all()
    # Scrambling the test period's labels changes nothing about training.
    imp = split.impressions
    flipped = np.where(imp.ts >= test_ts, 1 - imp.clicked, imp.clicked).astype(np.int8)
    scrambled = replace(split, impressions=Impressions(
        imp.request_ids, imp.user_idx, imp.item_idx, imp.ts, flipped
    ))  # fmt: skip
    second = train(scrambled, semantic, config)
    assert second.best_epoch == first.best_epoch
    for name, value in first.model.state_dict().items():
        torch.testing.assert_close(value, second.model.state_dict()[name])
