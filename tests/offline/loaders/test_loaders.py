"""Each public format loads into a valid canonical dataset; a broken line names file and line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from offline.data.canonical import Dataset
from offline.data.loaders import LoaderConfig, MalformedDataError, load_dataset
from tests.support.loaders import (
    check_broken_line_named,
    check_canonical,
    write_amazon,
    write_movielens,
    write_recbole,
    write_taobao,
)

WRITERS: dict[str, Callable[[Path], Path]] = {
    "recbole": write_recbole,
    "movielens": write_movielens,
    "taobao": write_taobao,
    "amazon": write_amazon,
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_format_loads_into_a_valid_dataset(kind: str, tmp_path: Path) -> None:
    dataset = load_dataset(kind, WRITERS[kind](tmp_path / kind))
    check_canonical(dataset)
    dataset.save(tmp_path / "saved")
    again = Dataset.load(tmp_path / "saved")
    np.testing.assert_array_equal(again.impressions.item_idx, dataset.impressions.item_idx)
    assert again.meta["id_mapping"]["items"] == "i<original>"


def test_recbole_ratings_thresholds_negatives_and_metadata(tmp_path: Path) -> None:
    source = write_recbole(tmp_path / "rb")
    config = LoaderConfig(click_threshold=4, negatives_per_positive=3, split_quantile=0.7)
    dataset = load_dataset("recbole", source, config)
    imp = dataset.impressions
    sizes = np.bincount(imp.request_ids)
    clicked_requests = np.bincount(imp.request_ids, weights=imp.clicked) > 0
    assert sizes[~clicked_requests].max() == 1  # low ratings stand alone
    assert sizes[clicked_requests].max() == 4 and sizes[clicked_requests].mean() > 3.5
    row = dataset.catalogue.item_ids.tolist().index("i7")
    assert dataset.catalogue.category_paths[row] == "Catalogue>Drama"
    assert dataset.catalogue.styles[row] == "horror" and dataset.catalogue.titles[row] == "Movie 7"
    assert np.quantile(imp.ts, 0.7) == pytest.approx(dataset.split_ts, abs=86_400)
    # Same seed, same dataset.
    again = load_dataset("recbole", source, config)
    np.testing.assert_array_equal(again.impressions.item_idx, imp.item_idx)


def test_movielens_taobao_and_amazon_fill_the_catalogue(tmp_path: Path) -> None:
    movies = load_dataset("movielens", write_movielens(tmp_path / "ml")).catalogue
    assert movies.category_paths[0].startswith("Movies>") and "Café" in movies.titles[0]
    taobao = load_dataset("taobao", write_taobao(tmp_path / "tb"))
    assert taobao.catalogue.category_paths[0].startswith("Taobao>Category ")
    assert set(np.unique(taobao.behaviours.event).tolist()) == {1, 2, 3}
    amazon = load_dataset("amazon", write_amazon(tmp_path / "az")).catalogue
    row = amazon.item_ids.tolist().index("iB0001")
    assert amazon.category_paths[row] == "Toys & Games>Comedy"
    assert amazon.brands[row] == "Brand1" and amazon.materials[row] == "Wood"
    assert amazon.prices[row] == pytest.approx(10.99)


@pytest.mark.parametrize(
    ("kind", "file", "bad_line", "message"),
    [
        ("recbole", "mini.inter", "7\t3\tfive\t1600000000", "rating"),
        ("recbole", "mini.inter", "7\t3", "expected 4 tab-separated fields"),
        ("movielens", "ratings.dat", "1::2::3", "expected 4 '::'-separated fields"),
        ("taobao", "UserBehavior.csv", "1,2,3,click,1600000000", "unknown behavior_type"),
        ("amazon", "Toys.jsonl", '{"rating": 5, "user_id": "A"', "invalid JSON"),
        ("amazon", "meta_Toys.jsonl", '{"title": "no asin"}', "missing parent_asin"),
    ],
)
def test_a_malformed_line_names_the_file_and_line(
    kind: str, file: str, bad_line: str, message: str, tmp_path: Path
) -> None:
    source = WRITERS[kind](tmp_path / kind)
    check_broken_line_named(kind, source / file, bad_line, message, at=lambda _: 4)  # line 5


def test_a_missing_file_or_bad_header_is_clear(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MalformedDataError, match=r"ratings\.dat: file not found"):
        load_dataset("movielens", tmp_path / "empty")
    source = write_recbole(tmp_path / "rb")
    (source / "mini.inter").write_text("user_id\titem_id:token\n1\t2\n")
    with pytest.raises(MalformedDataError, match=r"mini.inter:1: header field"):
        load_dataset("recbole", source)
