"""Generation's guarantees: K items, none from the history, no duplicates, seeded, batch-free."""

from __future__ import annotations

import numpy as np
import pytest

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr.checkpoint import GBRModel
from offline.gbr.generate import GenerationConfig, generate_for_users
from offline.gbr.sequences import behaviour_sequences


def _history(tiny: tuple[Dataset, GroundTruth]):  # type: ignore[no-untyped-def]
    dataset = tiny[0]
    return behaviour_sequences(dataset.behaviours, len(dataset.user_ids), dataset.split_ts)


@pytest.mark.parametrize("which", ["item_model", "semantic_model"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_blocks_respect_k_history_and_uniqueness(
    which: str,
    temperature: float,
    tiny: tuple[Dataset, GroundTruth],
    request: pytest.FixtureRequest,
) -> None:
    model: GBRModel = request.getfixturevalue(which)
    sequences = _history(tiny)
    users = np.flatnonzero(sequences.lengths() > 0)
    config = GenerationConfig(k=6, steps=3, temperature=temperature, top_p=0.95, batch_size=32)
    block = generate_for_users(model, sequences, users, config)
    assert block.item_idx.shape == (len(users), 6) == block.confidence.shape
    for row, user in zip(block.item_idx, users.tolist(), strict=True):
        assert (row >= 0).all()
        assert len(set(row.tolist())) == 6
        assert not set(row.tolist()) & set(sequences.of(user).tolist())
    assert ((block.confidence > 0) & (block.confidence <= 1)).all()
    # most confident first
    assert (np.diff(block.confidence, axis=1) <= 1e-6).all()


@pytest.mark.parametrize("which", ["item_model", "semantic_model"])
def test_seeded_reproducible_and_independent_of_batching(
    which: str, tiny: tuple[Dataset, GroundTruth], request: pytest.FixtureRequest
) -> None:
    model: GBRModel = request.getfixturevalue(which)
    sequences = _history(tiny)
    users = np.flatnonzero(sequences.lengths() > 0)
    config = GenerationConfig(k=4, steps=2, temperature=1.0, top_p=1.0, seed=3, batch_size=16)
    first = generate_for_users(model, sequences, users, config)
    again = generate_for_users(model, sequences, users, config)
    np.testing.assert_array_equal(first.item_idx, again.item_idx)
    # The same users alone, in another order and batch size, get the same blocks.
    subset = users[::-3][:20]
    alone = generate_for_users(
        model, sequences, subset, GenerationConfig(**{**config.__dict__, "batch_size": 7})
    )
    index = {user: row for row, user in enumerate(users.tolist())}
    np.testing.assert_array_equal(alone.item_idx, first.item_idx[[index[u] for u in subset]])
    other_seed = generate_for_users(
        model, sequences, users, GenerationConfig(**{**config.__dict__, "seed": 4})
    )
    assert (other_seed.item_idx != first.item_idx).any()


def test_k_beyond_the_trained_slots_is_refused(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth]
) -> None:
    sequences = _history(tiny)
    with pytest.raises(ValueError, match="slots"):
        generate_for_users(item_model, sequences, np.array([0]), GenerationConfig(k=64))


def test_checkpoint_round_trip(item_model: GBRModel, tiny, tmp_path) -> None:  # type: ignore[no-untyped-def]
    loaded = GBRModel.load(item_model.save(tmp_path / "gbr"))
    assert loaded.version == item_model.version and loaded.version.startswith("gbr-")
    sequences = _history(tiny)
    users = np.flatnonzero(sequences.lengths() > 0)[:30]
    config = GenerationConfig(k=4, steps=2)
    np.testing.assert_array_equal(
        generate_for_users(loaded, sequences, users, config).item_idx,
        generate_for_users(item_model, sequences, users, config).item_idx,
    )
