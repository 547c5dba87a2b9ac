"""PyTorch, the full ONNX graph and the serving scorers (host and device path) score alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_export.parity import BundleGraphs, ParityShape, parity_report, random_feeds
from model_export.train import TrainedRanker
from service.contracts import graphs as g

TOLERANCE = 1e-4


def test_all_paths_agree_on_default_shapes(bundle_dir: Path, trained: TrainedRanker) -> None:
    report = parity_report(bundle_dir, trained)
    assert set(report) == {"full_vs_chained", "full_vs_device", "torch_vs_full"}
    assert max(report.values()) <= TOLERANCE, report


def test_single_candidate_without_generated_behaviours(
    bundle_dir: Path, trained: TrainedRanker
) -> None:
    shapes = (
        ParityShape(1, 1, 1, 1, empty_generated=True),
        ParityShape(5, 1, 300, 1, empty_generated=True),
        ParityShape(2, 500, 256, 16),
    )
    report = parity_report(bundle_dir, trained, shapes, seed=11)
    assert max(report.values()) <= TOLERANCE, report


def test_ranker_trained_without_generated_blocks_ignores_them(bundle_dir: Path) -> None:
    graphs = BundleGraphs(bundle_dir)
    feeds = random_feeds(ParityShape(3, 8, 12, 4), graphs.item_dim, np.random.default_rng(5))
    with_block = graphs.full(feeds | {g.GENERATED_MASK: np.ones((3, 4), np.float32)})
    without = graphs.full(feeds | {g.GENERATED_MASK: np.zeros((3, 4), np.float32)})
    np.testing.assert_allclose(with_block, without, atol=1e-6)
