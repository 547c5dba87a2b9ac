"""MovieLens latest (CSV): every field becomes item metadata, tags only from before the split,
and the sampled negatives are honest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from offline.data.loaders import LoaderConfig, load_dataset
from offline.knowledge import OfflineKnowledgeBackend
from offline.knowledge.text import knowledge_text
from tests.support.loaders import check_canonical, write_movielens_csv


def test_titles_years_genres_and_tags_before_the_split(tmp_path: Path) -> None:
    config = LoaderConfig(split_quantile=0.7, test_quantile=0.85)
    dataset = load_dataset("movielens", write_movielens_csv(tmp_path / "ml"), config)
    check_canonical(dataset)
    assert dataset.split_ts < dataset.test_ts  # type: ignore[operator]
    catalogue = dataset.catalogue
    row = catalogue.item_ids.tolist().index("i1")
    assert catalogue.titles[row] == "Film 0, The"  # the quoted comma survives, the year leaves
    assert catalogue.descriptions[row] == "released 1990, 1990s"
    assert catalogue.category_paths[row] == "Movies>Other"  # "(no genres listed)"
    row = catalogue.item_ids.tolist().index("i4")
    assert catalogue.category_paths[row] == "Movies>Horror" and catalogue.styles[row] == "action"
    # A tag written before the split is kept; one written after it is the future.
    assert catalogue.keywords[row] == "horror classic"
    assert not any("written late" in words for words in catalogue.keywords.tolist())
    text = knowledge_text(OfflineKnowledgeBackend().describe(catalogue)[row])
    assert "title: film 3, the" in text and "keywords: horror classic" in text
    assert "released 1993" in text and "price" not in text  # no price stated, no band invented


def test_sampled_negatives_are_items_the_user_never_touched_and_were_known(
    tmp_path: Path,
) -> None:
    dataset = load_dataset("movielens", write_movielens_csv(tmp_path / "ml"))
    imp, beh = dataset.impressions, dataset.behaviours
    sizes = np.bincount(imp.request_ids)
    sampled = (imp.clicked == 0) & (sizes[imp.request_ids] > 1)
    assert sampled.sum() > 100
    # Every (user, item) the log holds as a rating: behaviours and lone observed non-clicks.
    rated = set(zip(beh.user_idx.tolist(), beh.item_idx.tolist(), strict=True))
    lone = sizes[imp.request_ids] == 1
    rated |= set(zip(imp.user_idx[lone].tolist(), imp.item_idx[lone].tolist(), strict=True))
    pairs = zip(imp.user_idx[sampled].tolist(), imp.item_idx[sampled].tolist(), strict=True)
    assert not any(pair in rated for pair in pairs)
    # Popularity known at the time: a sampled item had been interacted with before the request.
    first_seen = dataset.catalogue.launch_ts
    assert np.all(first_seen[imp.item_idx[sampled]] < imp.ts[sampled])
