"""The diffusion model really learns: a tiny network overfits fixed patterns and recovers masked
items, and regenerates held-out continuations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.gbr.checkpoint import GBRModel
from offline.gbr.generate import GenerationConfig, generate_for_prefixes
from offline.gbr.model import MaskedDiffusionLM
from offline.gbr.sequences import BehaviourSequences
from offline.gbr.tokens import MASK, ItemTokens
from offline.gbr.train import GBRTrainConfig, fit_network

N_ITEMS = 30
PATTERN_LEN = 8


def _patterns() -> np.ndarray:
    """Five fixed orderings of 8 items drawn from 30, shared items allowed across patterns."""
    rng = np.random.default_rng(7)
    return np.stack([rng.choice(N_ITEMS, PATTERN_LEN, replace=False) for _ in range(5)])


def _corpus(patterns: np.ndarray, users_per_pattern: int) -> BehaviourSequences:
    items = np.repeat(patterns, users_per_pattern, axis=0).reshape(-1).astype(np.int64)
    n_users = len(patterns) * users_per_pattern
    offsets = np.arange(n_users + 1, dtype=np.int64) * PATTERN_LEN
    ts = np.tile(np.arange(PATTERN_LEN, dtype=np.int64), n_users)
    return BehaviourSequences(offsets=offsets, items=items, ts=ts)


@pytest.fixture(scope="module")
def toy() -> tuple[GBRModel, np.ndarray]:
    patterns = _patterns()
    layout = ItemTokens(N_ITEMS)
    config = GBRTrainConfig(
        dim=64, heads=4, layers=2, ff_dim=128, history_items=8, max_slots=4,
        epochs=100, batch_size=64, learning_rate=5e-3, warmup_steps=20,
    )  # fmt: skip
    network = fit_network(_corpus(patterns, 8), layout, config)
    model = GBRModel(
        network=network,
        layout=layout,
        item_ids=np.char.add("i", np.arange(N_ITEMS).astype(str)),
        semantic_vectors=np.eye(N_ITEMS, dtype=np.float32),
        until_ts=None,
        version="gbr-toy",
        train_info={},
    )
    return model, patterns


def test_overfits_patterns_and_recovers_masked_items(toy: tuple[GBRModel, np.ndarray]) -> None:
    model, patterns = toy
    network: MaskedDiffusionLM = model.network
    tokens = torch.from_numpy(model.layout.encode(patterns))
    rng = np.random.default_rng(0)
    correct = total = 0
    with torch.inference_mode():
        for _ in range(20):
            masked = torch.from_numpy(rng.random(tokens.shape) < 0.3)
            hidden = network(torch.where(masked, torch.full_like(tokens, MASK), tokens))
            predicted = network.level_logits(hidden, 0).argmax(-1) + network.config.level_start(0)
            correct += int((predicted[masked] == tokens[masked]).sum())
            total += int(masked.sum())
    assert total > 0 and correct / total > 0.9


def test_regenerates_held_out_continuations(toy: tuple[GBRModel, np.ndarray]) -> None:
    model, patterns = toy
    sequences = _corpus(patterns, 1)
    users = np.arange(len(patterns))
    block = generate_for_prefixes(
        model, sequences, users, np.full(len(users), 6),
        GenerationConfig(k=2, steps=2, temperature=0.0),
    )  # fmt: skip
    recovered = [
        set(row.tolist()) == set(p[6:].tolist())
        for row, p in zip(block.item_idx, patterns, strict=True)
    ]
    assert np.mean(recovered) >= 0.8
