"""Knowledge complements: kinds named by the history, in other departments, fill the last slots
with the generator's own most likely items of those kinds, never history or duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr.checkpoint import GBRModel
from offline.gbr.complements import KindComplements, complement_fill
from offline.gbr.evaluate import secondary_visibility
from offline.gbr.generate import GenerationConfig, generate_for_users
from offline.gbr.sequences import behaviour_sequences
from offline.knowledge import OfflineKnowledgeBackend


@pytest.fixture(scope="module")
def complements(tiny: tuple[Dataset, GroundTruth]) -> KindComplements:
    return KindComplements.from_records(OfflineKnowledgeBackend().describe(tiny[0].catalogue))


def test_complements_cross_departments_and_rank_by_votes(complements: KindComplements) -> None:
    assert len(complements.cross_complements) == complements.n_kinds
    assert any(len(kinds) for kinds in complements.cross_complements)
    for kind, others in enumerate(complements.cross_complements):
        assert (complements.kind_department[others] != complements.kind_department[kind]).all()
    item = int(
        np.flatnonzero([len(complements.cross_complements[k]) for k in complements.item_kind])[0]
    )
    ranked = complements.ranked_kinds(np.array([item, item, -1]), top=2)
    assert set(ranked.tolist()) <= set(complements.cross_complements[complements.item_kind[item]])


def test_fill_takes_complement_kinds_and_keeps_the_rest(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth], complements: KindComplements
) -> None:
    dataset, truth = tiny
    history = behaviour_sequences(dataset.behaviours, len(dataset.user_ids), dataset.split_ts)
    users = np.flatnonzero(history.lengths() > 0)
    block = generate_for_users(item_model, history, users, GenerationConfig(k=6, steps=2))
    filled = complement_fill(item_model, history, users, block, complements, slots=2)
    assert np.array_equal(filled.item_idx[:, :4], block.item_idx[:, :4])
    changed = 0
    for row, user in enumerate(users.tolist()):
        items = filled.item_idx[row]
        assert len(set(items.tolist())) == 6
        assert not set(items.tolist()) & set(history.of(user).tolist())
        wanted = set(complements.ranked_kinds(history.of(user), 2).tolist())
        new = items[4:][items[4:] != block.item_idx[row, 4:]]
        assert set(complements.item_kind[new].tolist()) <= wanted
        changed += len(new) > 0
    assert changed > 0
    visible = secondary_visibility(history, users, truth, complements)
    assert 0.0 <= visible["complement_top1"] <= visible["complement_top3"] <= 1.0
    main_is_primary = [
        np.bincount(truth.item_leaf[history.of(user)]).argmax() == truth.user_primary_leaf[user]
        for user in users.tolist()
    ]
    assert visible["primary_main_kind"] == round(float(np.mean(main_is_primary)), 4)
    assert 0.0 < visible["primary_main_kind"] < 1.0
