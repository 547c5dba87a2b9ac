"""Small dataset files in each public format, written by the tests (nothing is downloaded), and
the checks every canonical dataset loaded from them must pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from offline.data.canonical import Dataset
from offline.data.loaders import LoaderConfig, MalformedDataError, load_dataset

T0 = 1_600_000_000
GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance")


def interactions(n_users: int, n_items: int, n: int, seed: int) -> list[tuple[int, int, int, int]]:
    """(user, item, rating 1..5, ts) rows; users like items of 'their' genre."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        user, item = int(rng.integers(n_users)), int(rng.integers(n_items))
        liked = user % len(GENRES) == item % len(GENRES)
        rating = int(rng.integers(4, 6)) if liked or rng.random() < 0.3 else int(rng.integers(1, 4))
        rows.append((user, item, rating, T0 + int(rng.integers(0, 60 * 86_400))))
    return rows


def write_recbole(
    directory: Path, n_users: int = 40, n_items: int = 60, n: int = 400, seed: int = 0
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in interactions(n_users, n_items, n, seed)]
    (directory / "mini.inter").write_text("\n".join(lines) + "\n")
    items = ["item_id:token\tmovie_title:token_seq\tclass:token_seq"]
    for item in range(n_items):
        genres = f"{GENRES[item % 5]} {GENRES[(item + 1) % 5]}"
        items.append(f"{item}\tMovie {item}\t{genres}")
    (directory / "mini.item").write_text("\n".join(items) + "\n")
    return directory


def write_movielens(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = interactions(20, 30, 200, 1)
    ratings = "".join(f"{u + 1}::{i + 1}::{r}::{t}\n" for u, i, r, t in rows)
    (directory / "ratings.dat").write_bytes(ratings.encode("latin-1"))
    movies = "".join(
        f"{i + 1}::Café Film {i} (1999)::{GENRES[i % 5]}|{GENRES[(i + 2) % 5]}\n" for i in range(30)
    )
    (directory / "movies.dat").write_bytes(movies.encode("latin-1"))
    return directory


def write_movielens_csv(
    directory: Path, n_users: int = 30, n_items: int = 40, n: int = 600, seed: int = 3
) -> Path:
    """MovieLens latest layout: ratings.csv, movies.csv (quoted titles) and tags.csv."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = interactions(n_users, n_items, n, seed)
    ratings = ["userId,movieId,rating,timestamp"]
    ratings += [f"{u + 1},{i + 1},{r - 0.5 if r > 1 else r:.1f},{t}" for u, i, r, t in rows]
    (directory / "ratings.csv").write_text("\n".join(ratings) + "\n")
    movies = ["movieId,title,genres"]
    for i in range(n_items):
        genres = f"{GENRES[i % 5]}|{GENRES[(i + 2) % 5]}" if i % 7 else "(no genres listed)"
        movies.append(f'{i + 1},"Film {i}, The ({1990 + i % 20})",{genres}')
    (directory / "movies.csv").write_text("\n".join(movies) + "\n")
    tags = ["userId,movieId,tag,timestamp"]
    for i in range(0, n_items, 3):
        tags.append(f"1,{i + 1},{GENRES[i % 5].lower()} classic,{T0 + 86_400}")
        tags.append(f"2,{i + 1},written late,{T0 + 59 * 86_400}")
    (directory / "tags.csv").write_text("\n".join(tags) + "\n")
    return directory


def write_taobao(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    kinds = ("pv", "pv", "pv", "cart", "fav", "buy")
    rows = interactions(20, 30, 200, 2)
    lines = [f"{u},{i},{i % 4},{kinds[k % 6]},{t}" for k, (u, i, _, t) in enumerate(rows)]
    (directory / "UserBehavior.csv").write_text("\n".join(lines) + "\n")
    return directory


def write_amazon(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = interactions(20, 30, 200, 3)
    reviews = [
        {
            "rating": float(r),
            "title": "ok",
            "text": "fine",
            "asin": f"B{i:04d}X",
            "parent_asin": f"B{i:04d}",
            "user_id": f"AUSER{u}",
            "timestamp": t * 1000,
            "verified_purchase": True,
            "helpful_vote": 0,
        }
        for u, i, r, t in rows
    ]
    (directory / "Toys.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reviews))
    meta = [
        {
            "parent_asin": f"B{i:04d}",
            "title": f"Toy {i}",
            "main_category": "Toys",
            "categories": ["Toys & Games", GENRES[i % 5]],
            "store": f"Brand{i % 3}",
            "price": None if i % 4 == 0 else 9.99 + i,
            "details": {"Material": "Wood"},
        }
        for i in range(30)
    ]
    (directory / "meta_Toys.jsonl").write_text("".join(json.dumps(m) + "\n" for m in meta))
    return directory


def check_canonical(dataset: Dataset) -> None:
    catalogue, imp, beh = dataset.catalogue, dataset.impressions, dataset.behaviours
    assert len(catalogue) > 0 and len(imp) > 0 and len(beh) > 0
    assert all(i.startswith("i") for i in catalogue.item_ids.tolist())
    assert all(u.startswith("u") for u in dataset.user_ids.tolist())
    assert imp.item_idx.max() < len(catalogue) and imp.user_idx.max() < len(dataset.user_ids)
    assert set(np.unique(imp.clicked).tolist()) <= {0, 1} and imp.clicked.sum() > 0
    # Every shown item was live when it was shown.
    assert np.all(catalogue.launch_ts[imp.item_idx] <= imp.ts)
    assert np.all(np.diff(beh.user_idx) >= 0) and set(np.unique(beh.event).tolist()) <= {1, 2, 3}
    assert imp.ts.min() < dataset.split_ts <= imp.ts.max()
    assert catalogue.price_bands.min() >= 0 and catalogue.price_bands.max() <= 4
    # A request never shows an item twice.
    pairs = imp.request_ids * len(catalogue) + imp.item_idx
    assert len(np.unique(pairs)) == len(pairs)


def check_broken_line_named(
    kind: str,
    path: Path,
    bad_line: str,
    message: str,
    at: Callable[[int], int],
    config: LoaderConfig | None = None,
) -> None:
    """Insert ``bad_line`` into the file ``path`` at index ``at(lines in the file)``: loading its
    folder as ``kind`` fails with ``message``, naming the file and the line."""
    lines = path.read_bytes().decode("latin-1").splitlines()
    index = at(len(lines))
    lines.insert(index, bad_line)
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(MalformedDataError, match=message) as caught:
        load_dataset(kind, path.parent, config)
    assert caught.value.line == index + 1 and caught.value.path == path
    assert f"{path.name}:{index + 1}:" in str(caught.value)
