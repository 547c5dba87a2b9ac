"""Generated behaviour blocks: aligned with the examples, learned from, and exported faithfully.

The planted signal is an oracle block (the request's own clicked items): a ranker that can read
its generated pool must then rank far better than one without it, which no broken alignment,
masking or embedding of the block could reach.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from model_export.bundle import export_bundle, fused_item_table
from model_export.dataset import (
    GeneratedBlocksLog,
    batch_logits,
    batches,
    build_examples,
    example_requests,
    time_split,
)
from model_export.evaluate import evaluate
from model_export.parity import BundleGraphs, ParityShape, check_parity, random_feeds
from model_export.train import GENERATED_BRANCH, TrainConfig, TrainedRanker, drop_blocks, train
from offline.data.canonical import Dataset
from service.bundles.loaded import _check_signatures
from service.contracts import graphs as g
from service.contracts.manifest import (
    BundleIntegrityError,
    EvaluationMetrics,
    GeneratorInfo,
    read_manifest,
)
from service.device.modules import block_slots
from tests.support.learnable import FAST_CONFIG, TEST_ENCODER

Learnable = tuple[Dataset, npt.NDArray[np.float32]]


def oracle_log(dataset: Dataset) -> GeneratedBlocksLog:
    """Each request's clicked items as its generated block (-1 elsewhere)."""
    examples = build_examples(dataset, max_seq_len=1)
    items = np.where(examples.labels > 0, examples.candidate_items, -1)
    return GeneratedBlocksLog(items=items, version="oracle-test")


@pytest.fixture(scope="module")
def oracle(learnable: Learnable) -> GeneratedBlocksLog:
    return oracle_log(learnable[0])


@pytest.fixture(scope="module")
def with_blocks(learnable: Learnable, oracle: GeneratedBlocksLog) -> TrainedRanker:
    dataset, semantic = learnable
    return train(dataset, semantic, replace(FAST_CONFIG, generated=oracle.k), oracle)


def test_example_requests_follow_the_examples_through_the_split(learnable: Learnable) -> None:
    dataset, _ = learnable
    users, ts = example_requests(dataset)
    examples = build_examples(dataset, max_seq_len=5)
    assert np.array_equal(users, examples.user_idx)
    assert np.array_equal(ts, examples.ts)
    # A block computed from each request's own (user, time) must stay on that request's row.
    n_items = len(dataset.catalogue)
    items = np.stack([users % n_items, ts % n_items, np.full_like(users, -1)], axis=1)
    log = GeneratedBlocksLog(items=items, version="echo")
    for part in time_split(dataset, max_seq_len=5, generated=log):
        assert part.generated_items.shape == (len(part), 3)
        assert np.array_equal(part.generated_items[:, 0], part.user_idx % n_items)
        assert np.array_equal(part.generated_items[:, 1], part.ts % n_items)
    with pytest.raises(ValueError, match="example_requests"):
        build_examples(dataset, 5, GeneratedBlocksLog(items=items[1:], version="short"))


def test_batches_trim_empty_columns_and_keep_one_masked_slot(learnable: Learnable) -> None:
    dataset, _ = learnable
    n = len(example_requests(dataset)[0])
    items = np.full((n, 4), -1, dtype=np.int64)
    items[::2, 1] = 7
    examples = build_examples(dataset, 5, GeneratedBlocksLog(items=items, version="sparse"))
    batch = next(batches(examples, 4))
    assert batch.generated_items.shape == (4, 2)  # trailing empty columns cut
    assert batch.generated_mask.tolist() == [[0, 1], [0, 0], [0, 1], [0, 0]]
    assert int(batch.generated_items.min()) == 0  # empty slots index row 0, masked
    empty = build_examples(dataset, 5, GeneratedBlocksLog(items=items[:, :0], version="none"))
    batch = next(batches(empty, 4))
    assert batch.generated_items.shape == (4, 1) and float(batch.generated_mask.sum()) == 0.0


def test_block_dropout_hides_whole_blocks_of_about_its_share_of_requests(
    learnable: Learnable,
) -> None:
    dataset, _ = learnable
    n = len(example_requests(dataset)[0])
    items = np.tile(np.arange(1, 4, dtype=np.int64), (n, 1))
    examples = build_examples(dataset, 5, GeneratedBlocksLog(items=items, version="full"))
    batch = next(batches(examples, 512))
    rng = np.random.default_rng(0)
    assert drop_blocks(batch, 0.0, rng) is batch
    dropped = drop_blocks(batch, 0.5, rng)
    per_request = dropped.generated_mask.sum(dim=1)
    # Each block is hidden whole or kept whole, and nothing else in the batch changes.
    assert set(per_request.tolist()) <= {0.0, 3.0}
    assert 0.35 < float((per_request == 0).float().mean()) < 0.65
    assert torch.equal(dropped.generated_items, batch.generated_items)
    assert torch.equal(dropped.sequence_mask, batch.sequence_mask)
    with pytest.raises(ValueError, match="block_dropout"):
        train(dataset, learnable[1], TrainConfig(block_dropout=1.0))


def test_block_dropout_leaves_a_ranker_without_blocks_exactly_as_it_was(
    learnable: Learnable, trained: TrainedRanker
) -> None:
    """A ranker without generated blocks draws nothing for block dropout: its training (the
    shuffling shares the generator) is the same whatever the rate."""
    dataset, semantic = learnable
    assert trained.config.generated == 0
    again = train(dataset, semantic, replace(trained.config, block_dropout=0.5))
    for name, value in trained.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[name]), name


def test_the_generated_pathway_learns_a_planted_signal(
    learnable: Learnable,
    oracle: GeneratedBlocksLog,
    with_blocks: TrainedRanker,
    model_metrics: dict[str, EvaluationMetrics],
) -> None:
    dataset, _ = learnable
    without = model_metrics["model"]
    found = evaluate(with_blocks, dataset, oracle)
    assert found.auc > without.auc + 0.1, (found, without)
    assert found.gauc > without.gauc + 0.1, (found, without)
    # Without its blocks the same ranker loses the signal: it really reads them.
    assert evaluate(with_blocks, dataset).auc < found.auc - 0.1


def test_generated_items_are_scored_through_the_fused_table(
    learnable: Learnable, oracle: GeneratedBlocksLog, with_blocks: TrainedRanker
) -> None:
    dataset, _ = learnable
    _, evaluation = time_split(dataset, FAST_CONFIG.max_seq_len, oracle)
    batch = next(batches(evaluation, 64))
    assert float(batch.generated_mask.sum()) > 0
    model = with_blocks.model.eval()
    table = torch.from_numpy(fused_item_table(with_blocks))
    with torch.inference_mode():
        by_index = batch_logits(model, batch)
        by_vector = model.score_vectors(
            table[batch.candidate_items],
            table[batch.sequence_items],
            batch.sequence_events,
            batch.sequence_gaps,
            table[batch.generated_items],
            batch.sequence_mask,
            batch.generated_mask,
        )
    torch.testing.assert_close(by_index, by_vector, atol=1e-5, rtol=1e-5)


def test_bundle_with_generated_blocks_records_them_and_keeps_parity(
    tmp_path: Path, learnable: Learnable, oracle: GeneratedBlocksLog, with_blocks: TrainedRanker
) -> None:
    dataset, semantic = learnable
    with pytest.raises(ValueError, match="generator"):
        export_bundle(with_blocks, dataset, semantic, TEST_ENCODER, {}, tmp_path, None)
    generator = GeneratorInfo(version=oracle.version)
    path = export_bundle(
        with_blocks, dataset, semantic, TEST_ENCODER, {}, tmp_path, None, generator=generator
    )
    manifest = read_manifest(path)
    assert manifest.max_lengths.generated == oracle.k
    assert manifest.generator is not None and manifest.generator.version == oracle.version
    assert check_parity(path, with_blocks) <= 1e-4
    graphs = BundleGraphs(path)
    feeds = random_feeds(ParityShape(3, 8, 12, 4), graphs.item_dim, np.random.default_rng(5))
    with_block = graphs.full(feeds | {g.GENERATED_MASK: np.ones((3, 4), np.float32)})
    without = graphs.full(feeds | {g.GENERATED_MASK: np.zeros((3, 4), np.float32)})
    assert np.abs(with_block - without).max() > 1e-3  # the block now moves scores


def test_a_residual_learns_the_planted_signal_on_a_frozen_base(
    learnable: Learnable,
    oracle: GeneratedBlocksLog,
    trained: TrainedRanker,
    model_metrics: dict[str, EvaluationMetrics],
) -> None:
    """Grown on a ranker without blocks, only the generated branch moves, and it alone carries
    the planted signal."""
    dataset, semantic = learnable
    config = replace(trained.config, generated=oracle.k)
    residual = train(dataset, semantic, config, oracle, start_from=trained.model)
    base = trained.model.state_dict()
    moved = {
        name
        for name, value in residual.model.state_dict().items()
        if not torch.equal(value, base[name])
    }
    assert moved and all(GENERATED_BRANCH in name for name in moved), moved
    assert evaluate(residual, dataset, oracle).auc > model_metrics["model"].auc + 0.1
    # Without a block it scores exactly as the ranker it grew on.
    torch.testing.assert_close(
        evaluate(residual, dataset).auc, evaluate(trained, dataset).auc, rtol=0, atol=1e-6
    )


def test_a_residual_with_slot_vectors_grows_them_on_a_base_without(
    learnable: Learnable, oracle: GeneratedBlocksLog, trained: TrainedRanker
) -> None:
    """Slot vectors are part of the generated branch: a residual may learn them on a ranker
    that has none, and still scores as that ranker without a block."""
    dataset, semantic = learnable
    config = replace(trained.config, generated=oracle.k, generated_slots=oracle.k, epochs=1)
    residual = train(dataset, semantic, config, oracle, start_from=trained.model)
    base = trained.model.state_dict()
    grown = residual.model.state_dict()
    assert set(grown) - set(base) == {"user_encoder.generated_slot.weight"}
    moved = {
        name for name, value in grown.items() if name in base and not torch.equal(value, base[name])
    }
    assert all(GENERATED_BRANCH in name for name in moved), moved
    torch.testing.assert_close(
        evaluate(residual, dataset).auc, evaluate(trained, dataset).auc, rtol=0, atol=1e-6
    )
    with pytest.raises(ValueError, match="cannot start"):  # slot vectors it would have to drop
        train(dataset, semantic, replace(config, generated_slots=0), oracle, residual.model)


def test_a_residual_validation_does_not_favour_keeps_its_start(
    learnable: Learnable, trained: TrainedRanker
) -> None:
    """The start is early stopping's epoch 0: blocks that hold nothing never beat it."""
    dataset, semantic = learnable
    ts = dataset.impressions.ts
    split = replace(dataset, test_ts=int(np.quantile(ts[ts >= dataset.split_ts], 0.5)))
    empty = GeneratedBlocksLog(
        np.full((len(build_examples(split, 1).labels), 4), -1, np.int64), "empty"
    )
    config = replace(trained.config, generated=empty.k, epochs=2, patience=1)
    residual = train(split, semantic, config, empty, start_from=trained.model)
    assert residual.best_epoch == 0
    for name, value in residual.model.state_dict().items():
        assert torch.equal(value, trained.model.state_dict()[name]), name
    with pytest.raises(ValueError, match="generated blocks"):
        train(split, semantic, trained.config, start_from=trained.model)


@pytest.fixture(scope="module")
def slotted(learnable: Learnable, oracle: GeneratedBlocksLog) -> TrainedRanker:
    dataset, semantic = learnable
    config = replace(FAST_CONFIG, epochs=1, generated=oracle.k, generated_slots=oracle.k)
    return train(dataset, semantic, config, oracle)


def test_slot_ranks_count_filled_slots_only() -> None:
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    assert block_slots(mask).tolist() == [[0, 0, 1, 2, 2], [0, 0, 0, 0, 0]]


def test_slot_vectors_need_a_block_and_their_slots(
    learnable: Learnable, slotted: TrainedRanker
) -> None:
    dataset, semantic = learnable
    with pytest.raises(ValueError, match="generated_slots"):
        train(dataset, semantic, replace(FAST_CONFIG, generated_slots=4))
    encoder = slotted.model.user_encoder
    assert encoder.slotted
    inputs = (torch.zeros(1, 2, 32), torch.ones(1, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="slots"):
        encoder(*inputs, torch.ones(1, 2, dtype=torch.int64), torch.zeros(1, 3, 32))


def test_bundle_with_slot_vectors_keeps_parity_and_reads_the_block_order(
    tmp_path: Path,
    learnable: Learnable,
    oracle: GeneratedBlocksLog,
    slotted: TrainedRanker,
    with_blocks: TrainedRanker,
) -> None:
    dataset, semantic = learnable
    generator = GeneratorInfo(version=oracle.version)

    def export(trained: TrainedRanker, folder: str) -> Path:
        return export_bundle(
            trained, dataset, semantic, TEST_ENCODER, {}, tmp_path / folder, None,
            generator=generator,
        )  # fmt: skip

    path = export(slotted, "slotted")
    assert read_manifest(path).dimensions.generated_slots == oracle.k
    # Every path (full graph, host split path packing blocks, device path, PyTorch) ranks the
    # slots alike, holes in a block included (DEFAULT_SHAPES has a gapped block).
    assert check_parity(path, slotted) <= 1e-4
    graphs = BundleGraphs(path)
    assert g.GENERATED_SLOTS in {i.name for i in graphs.sessions[g.USER_ENCODER].get_inputs()}
    assert g.GENERATED_SLOTS not in {i.name for i in graphs.sessions[g.FULL].get_inputs()}
    feeds = random_feeds(ParityShape(3, 8, 12, 4), graphs.item_dim, np.random.default_rng(5))
    feeds[g.GENERATED_MASK] = np.ones((3, 4), np.float32)
    reordered = feeds | {g.GENERATED_VECTORS: feeds[g.GENERATED_VECTORS][:, ::-1].copy()}
    # The same block in another order scores differently with slot vectors, alike without.
    assert np.abs(graphs.full(feeds) - graphs.full(reordered)).max() > 1e-4
    plain = BundleGraphs(export(with_blocks, "plain"))
    assert np.abs(plain.full(feeds) - plain.full(reordered)).max() < 1e-5
    # A manifest and user encoder that disagree on slots is refused before any request.
    with pytest.raises(BundleIntegrityError, match=g.GENERATED_SLOTS):
        _check_signatures("plain", plain.sessions, slotted=True)
    with pytest.raises(BundleIntegrityError, match="allows inputs"):
        _check_signatures("slotted", graphs.sessions, slotted=False)
