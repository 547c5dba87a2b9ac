"""The synthetic generator: canonical shapes, determinism, and the structure a ranker must learn."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from offline.data.canonical import Dataset
from offline.data.synthetic import (
    DEFAULT_END_TS,
    GroundTruth,
    SyntheticConfig,
    generate,
    generate_with_truth,
)
from service.contracts.features import EVENT_TYPES, event_type_id

Generated = tuple[Dataset, GroundTruth]


def _requests_per_user(dataset: Dataset) -> np.ndarray:
    pages = np.unique(dataset.impressions.request_ids, return_index=True)[1]
    return np.bincount(dataset.impressions.user_idx[pages], minlength=len(dataset.user_ids))


def test_same_config_gives_the_same_dataset() -> None:
    config = SyntheticConfig.preset("tiny")
    first, second = generate(config), generate(config)
    for table in ("catalogue", "impressions", "behaviours"):
        for column in fields(getattr(first, table)):
            left = getattr(getattr(first, table), column.name)
            right = getattr(getattr(second, table), column.name)
            np.testing.assert_array_equal(left, right, err_msg=f"{table}.{column.name}")
    assert first.meta == second.meta and first.split_ts == second.split_ts
    other = generate(SyntheticConfig.preset("tiny", seed=1))
    assert not np.array_equal(first.impressions.item_idx, other.impressions.item_idx)


def test_columns_have_canonical_dtypes_and_lengths(tiny: Generated) -> None:
    dataset, _ = tiny
    catalogue, impressions, behaviours = dataset.catalogue, dataset.impressions, dataset.behaviours
    assert len(catalogue) == 300 and len(dataset.user_ids) == 150
    assert {len(getattr(catalogue, f.name)) for f in fields(catalogue)} == {300}
    assert catalogue.price_bands.dtype == np.int32 and catalogue.prices.dtype == np.float32
    assert catalogue.launch_ts.dtype == np.int64 and catalogue.titles.dtype.kind == "U"
    assert impressions.request_ids.dtype == np.int64 and impressions.ts.dtype == np.int64
    assert impressions.user_idx.dtype == np.int32 and impressions.item_idx.dtype == np.int32
    assert impressions.clicked.dtype == np.int8
    assert behaviours.user_idx.dtype == np.int32 and behaviours.event.dtype == np.int8
    assert set(np.unique(catalogue.price_bands)) <= set(range(5))
    assert (catalogue.prices > 0).all()


def test_ids_are_zero_based(tiny: Generated) -> None:
    dataset, _ = tiny
    assert dataset.catalogue.item_ids.tolist() == [f"i{n}" for n in range(300)]
    assert dataset.user_ids.tolist() == [f"u{n}" for n in range(150)]


def test_catalogue_metadata_reads_like_products(tiny: Generated) -> None:
    catalogue = tiny[0].catalogue
    path = str(catalogue.category_paths[0])
    assert path.count(">") == 2
    title = str(catalogue.titles[0])
    assert str(catalogue.brands[0]) in title and path.split(">")[-1] in title


def test_timestamps_lie_in_the_window(tiny: Generated) -> None:
    dataset = tiny[0]
    start = DEFAULT_END_TS - 30 * 86_400
    assert dataset.split_ts == start + int(0.8 * 30 * 86_400)
    for ts in (dataset.impressions.ts, dataset.behaviours.ts):
        assert ts.min() >= start and ts.max() <= DEFAULT_END_TS
    shifted = generate(SyntheticConfig.preset("tiny"), end_ts=DEFAULT_END_TS + 3600)
    np.testing.assert_array_equal(shifted.impressions.ts, dataset.impressions.ts + 3600)


def test_items_are_never_shown_before_launch(tiny: Generated) -> None:
    dataset = tiny[0]
    impressions, launch = dataset.impressions, dataset.catalogue.launch_ts
    assert (launch[impressions.item_idx] <= impressions.ts).all()
    cold = launch >= dataset.split_ts
    assert cold.sum() == 30
    shown_cold = cold[impressions.item_idx]
    assert shown_cold.any() and (impressions.ts[shown_cold] >= dataset.split_ts).all()


def test_pages_hold_distinct_items_and_impressions_are_time_ordered(tiny: Generated) -> None:
    impressions = tiny[0].impressions
    assert (np.diff(impressions.ts) >= 0).all()
    pages = impressions.request_ids.reshape(-1, 10)
    assert (pages == pages[:, :1]).all()
    np.testing.assert_array_equal(pages[:, 0], np.arange(len(pages)))
    items = np.sort(impressions.item_idx.reshape(-1, 10), axis=1)
    assert (items[:, 1:] != items[:, :-1]).all()
    for column in (impressions.user_idx, impressions.ts):
        assert (column.reshape(-1, 10) == column.reshape(-1, 10)[:, :1]).all()


def test_behaviours_follow_clicks_sorted_by_user_then_time(tiny: Generated) -> None:
    dataset = tiny[0]
    behaviours, impressions = dataset.behaviours, dataset.impressions
    order = np.lexsort((behaviours.ts, behaviours.user_idx))
    np.testing.assert_array_equal(order, np.arange(len(behaviours)))
    counts = np.bincount(behaviours.event, minlength=len(EVENT_TYPES) + 1)
    assert counts[0] == 0 and counts[event_type_id("click")] == impressions.clicked.sum()
    assert 0 < counts[event_type_id("purchase")] < counts[event_type_id("cart")]
    assert counts[event_type_id("cart")] < counts[event_type_id("click")]
    assert dataset.meta["n_clicks"] == counts[event_type_id("click")]


def test_click_through_rate_is_realistic(small: Generated) -> None:
    meta = small[0].meta
    assert 0.05 <= meta["ctr"] <= 0.15
    assert 0.05 <= meta["ctr_train"] <= 0.15 and 0.05 <= meta["ctr_eval"] <= 0.15
    assert meta["ctr"] == pytest.approx(small[0].impressions.clicked.mean(), abs=1e-4)


def test_popularity_is_skewed(small: Generated) -> None:
    shows = np.sort(np.bincount(small[0].impressions.item_idx, minlength=3000))[::-1]
    assert shows[:300].sum() / shows.sum() > 0.4


def test_activity_is_heavy_tailed(small: Generated) -> None:
    requests = _requests_per_user(small[0])
    assert requests.min() >= 1
    assert (requests <= 3).mean() > 0.05
    assert requests.max() >= 10 * requests.mean()


def test_exposure_favours_the_primary_interest_and_hides_the_secondary(small: Generated) -> None:
    dataset, truth = small
    impressions = dataset.impressions
    top = np.array([path.split(">")[0] for path in truth.leaf_paths])
    item_leaf = truth.item_leaf[impressions.item_idx]
    primary_top = top[truth.user_primary_leaf[impressions.user_idx]]
    assert (top[item_leaf] == primary_top).mean() > 0.5
    secondary = item_leaf == truth.user_secondary_leaf[impressions.user_idx]
    assert secondary.mean() < 0.01
    # The hidden interest is real: when it is shown, it is clicked well above the base rate.
    assert impressions.clicked[secondary].mean() > 1.5 * impressions.clicked.mean()


def test_co_interest_worlds_give_one_secondary_kind_per_primary_kind() -> None:
    config = SyntheticConfig.preset("tiny", co_interest=True)
    _, truth = generate_with_truth(config)
    top = np.array([path.split(">")[0] for path in truth.leaf_paths])
    primary, secondary = truth.user_primary_leaf, truth.user_secondary_leaf
    patterned = np.array([
        np.bincount(secondary[primary == leaf]).max() / (primary == leaf).sum()
        for leaf in np.unique(primary)
    ])  # fmt: skip
    # Most shoppers of one primary kind share its one co-interest kind, in another department.
    assert np.average(patterned, weights=np.bincount(primary)[np.unique(primary)]) > 0.6
    assert (top[secondary] != top[primary]).all()
    _, free = generate_with_truth(SyntheticConfig.preset("tiny"))
    assert not np.array_equal(free.user_secondary_leaf, secondary)
    np.testing.assert_array_equal(free.user_primary_leaf, primary)  # the rest of the world stays


def test_the_complement_share_sets_how_many_secondary_interests_follow_the_pattern() -> None:
    followed = {}
    for share in (0.0, 0.7, 1.0):
        config = SyntheticConfig.preset("tiny", co_interest=True, secondary_complement_prob=share)
        _, truth = generate_with_truth(config)
        pattern = truth.co_interest_leaf[truth.user_primary_leaf]
        followed[share] = float((truth.user_secondary_leaf == pattern).mean())
    assert followed[1.0] == 1.0
    assert 0.5 < followed[0.7] < 0.9
    assert followed[0.0] < 0.1  # the others draw a kind each: the pattern's only by chance
    with pytest.raises(ValueError, match="secondary_complement_prob"):
        SyntheticConfig.preset("tiny", secondary_complement_prob=1.2)


def test_clicks_follow_the_hidden_affinity(small: Generated) -> None:
    dataset, truth = small
    impressions = dataset.impressions
    affinity = np.einsum(
        "nd,nd->n", truth.item_latent[impressions.item_idx], truth.user_latent[impressions.user_idx]
    )
    high = affinity > np.quantile(affinity, 0.9)
    low = affinity < np.quantile(affinity, 0.5)
    assert impressions.clicked[high].mean() > 3 * impressions.clicked[low].mean()


def test_dataset_round_trips_through_files(tiny: Generated, tmp_path: Path) -> None:
    dataset = tiny[0]
    json.dumps(dataset.meta)
    dataset.save(tmp_path / "tiny")
    loaded = Dataset.load(tmp_path / "tiny")
    np.testing.assert_array_equal(loaded.impressions.clicked, dataset.impressions.clicked)
    assert loaded.meta["config"]["n_items"] == 300 and loaded.split_ts == dataset.split_ts


@pytest.mark.parametrize(
    ("name", "items", "users"),
    [("tiny", 300, 150), ("small", 3000, 1500), ("demo", 5000, 2000), ("large", 10**6, 10**5)],
)
def test_presets(name: str, items: int, users: int) -> None:
    config = SyntheticConfig.preset(name)
    assert (config.n_items, config.n_users, config.impressions_per_request) == (items, users, 10)
    assert SyntheticConfig.preset(name, seed=7).seed == 7


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown preset"):
        SyntheticConfig.preset("huge")
    with pytest.raises(ValueError, match="too few items"):
        SyntheticConfig(n_items=15)
    with pytest.raises(ValueError, match="exposure_mix"):
        SyntheticConfig(exposure_mix=(0.5, 0.2, 0.2))
