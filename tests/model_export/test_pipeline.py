"""The whole path on the synthetic world: encode, train both rankers, evaluate, export, reload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model_export.bundle import export_bundle, fused_item_table
from model_export.dataset import GeneratedBlocksLog, build_examples
from model_export.evaluate import evaluate
from model_export.parity import check_parity
from model_export.pipeline import (
    ABLATION_VARIANTS,
    FULL,
    ID_GBR,
    ID_ONLY,
    MODEL,
    RANDOM,
    TrainingRun,
    build_bundle,
    export_run,
    train_run,
)
from model_export.train import TrainConfig
from offline.data.synthetic import SyntheticConfig, generate
from service.contracts.manifest import read_manifest, verify_files

TINY_CONFIG = TrainConfig(
    epochs=1, max_seq_len=20, item_dim=32, hidden_dim=64, threads=1, progress=False
)


def test_build_bundle_records_all_metric_sets(tmp_path: Path) -> None:
    dataset = generate(SyntheticConfig.preset("tiny"))
    path, metrics = build_bundle(dataset, tmp_path / "bundles", TINY_CONFIG, seed=1)
    manifest = read_manifest(path)
    verify_files(path, manifest)
    assert {MODEL, ID_ONLY, RANDOM} <= set(manifest.metrics)
    assert manifest.metrics == metrics
    assert manifest.text_encoder is not None and manifest.text_encoder.name
    assert manifest.dimensions.semantic_dim == manifest.text_encoder.dim
    assert check_parity(path) <= 1e-4


def test_training_run_survives_save_and_load(tmp_path: Path) -> None:
    dataset = generate(SyntheticConfig.preset("tiny", seed=3))
    run = train_run(dataset, TINY_CONFIG)
    run.save(tmp_path / "run")
    loaded = TrainingRun.load(tmp_path / "run")
    assert loaded.metrics == run.metrics
    assert loaded.encoder == run.encoder
    assert loaded.ranker.config == run.ranker.config
    np.testing.assert_array_equal(fused_item_table(loaded.ranker), fused_item_table(run.ranker))
    assert evaluate(loaded.ranker, dataset) == run.metrics[MODEL]


def test_training_is_reproducible() -> None:
    dataset = generate(SyntheticConfig.preset("tiny", seed=5))
    first = train_run(dataset, TINY_CONFIG)
    second = train_run(dataset, TINY_CONFIG)
    for a, b in zip(first.ranker.model.parameters(), second.ranker.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert first.metrics == second.metrics


def test_mismatched_semantic_vectors_are_refused(tmp_path: Path) -> None:
    dataset = generate(SyntheticConfig.preset("tiny", seed=7))
    run = train_run(dataset, TINY_CONFIG)
    with pytest.raises(ValueError, match="semantic"):
        export_bundle(
            run.ranker, dataset, run.semantic_vectors + 1.0, run.encoder, {}, tmp_path, None
        )
    assert not list(tmp_path.iterdir())


def test_ablation_rows_train_with_a_generated_log(tmp_path: Path) -> None:
    dataset = generate(SyntheticConfig.preset("tiny", seed=9))
    examples = build_examples(dataset, max_seq_len=1)
    clicked = np.where(examples.labels > 0, examples.candidate_items, -1)
    log = GeneratedBlocksLog(items=clicked, version="oracle-tiny", beyond_slots=2, log_weight=0.5)
    with pytest.raises(ValueError, match="none of"):
        train_run(dataset, TINY_CONFIG, generated=log)
    with pytest.raises(ValueError, match="need a generated"):
        train_run(dataset, TINY_CONFIG, variants=ABLATION_VARIANTS)
    run = train_run(dataset, TINY_CONFIG, generated=log, variants=ABLATION_VARIANTS)
    for name in (MODEL, ID_ONLY, ID_GBR, FULL):
        assert {name, f"{name}/cold_items", f"{name}/sparse_users"} <= set(run.metrics)
    assert run.ranker.config.generated == log.k and run.ranker.config.use_semantic
    assert run.generator is not None and run.generator.version == log.version
    # How the blocks were made travels with the run to the manifest (the nearline default).
    assert run.generator.blocks is not None
    assert (run.generator.blocks.beyond_slots, run.generator.blocks.log_weight) == (2, 0.5)
    run.save(tmp_path / "run")
    loaded = TrainingRun.load(tmp_path / "run")
    assert loaded.generator == run.generator
    assert loaded.ranker.config == run.ranker.config
    path = export_run(loaded, dataset, tmp_path / "bundles")
    manifest = read_manifest(path)
    assert manifest.max_lengths.generated == log.k
    assert manifest.generator == run.generator
