"""Loaders stream: small blocks give the dataset one block gives, the Arrow path gives what the
line readers give, a block bounds each batch, a sample keeps exactly its users' rows (the same
per seed), and a broken line in a later block is still named by file and line."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from offline.data.canonical import Dataset
from offline.data.loaders import (
    LoaderConfig,
    MalformedDataError,
    amazon,
    batches,
    load_dataset,
    movielens,
    recbole,
    taobao,
)
from offline.data.loaders.log import Interactions
from offline.data.loaders.taobao import read_taobao
from tests.support.loaders import (
    check_broken_line_named,
    write_amazon,
    write_movielens,
    write_movielens_csv,
    write_recbole,
    write_taobao,
)

WRITERS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "recbole": ("recbole", write_recbole),
    "movielens-dat": ("movielens", write_movielens),
    "movielens-csv": ("movielens", write_movielens_csv),
    "taobao": ("taobao", write_taobao),
    "amazon": ("amazon", write_amazon),
}
SMALL = 1024  # the smallest block: every fixture spans many


def assert_same(a: Dataset, b: Dataset) -> None:
    """Every array equal, with the same dtype, and the same split and meta."""
    for table in ("catalogue", "impressions", "behaviours"):
        for column in fields(getattr(a, table)):
            left, right = (
                getattr(getattr(a, table), column.name),
                getattr(getattr(b, table), column.name),
            )
            assert left.dtype == right.dtype, f"{table}.{column.name}"
            np.testing.assert_array_equal(left, right, err_msg=f"{table}.{column.name}")
    assert a.user_ids.dtype == b.user_ids.dtype
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    assert (a.split_ts, a.test_ts, a.meta) == (b.split_ts, b.test_ts, b.meta)


def read_rows(log: Interactions) -> list[tuple[str, str, int, int]]:
    """``(user, item, ts, event)`` of every row, in the order read."""
    columns = log.finish()
    return list(
        zip(
            columns.user_ids[columns.users].tolist(),
            columns.item_ids[columns.items].tolist(),
            columns.ts.tolist(),
            columns.events.tolist(),
            strict=True,
        )
    )


def chosen_users(users: list[str], size: int, seed: int) -> set[str]:
    """The ``size`` users of smallest BLAKE2b hash keyed by ``seed``, computed independently."""
    key = str(seed).encode()
    digest = {u: hashlib.blake2b(u.encode(), digest_size=8, key=key).digest() for u in users}
    return set(sorted(users, key=lambda u: int.from_bytes(digest[u]))[:size])


def line_reader_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every loader reads its files line by line, as before Arrow."""

    def lines_only(path: Path, log: Interactions | None, arrow: Any, lines: Any) -> Any:
        if not path.is_file():
            raise MalformedDataError(path, None, "file not found")
        found = lines()
        if log is not None:
            log.flush()
        return found

    for module in (amazon, movielens, recbole, taobao):
        monkeypatch.setattr(module, "read_with_fallback", lines_only)


@pytest.fixture(params=sorted(WRITERS))
def written(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """``(loader kind, folder)`` of the small files of each format, one format a test."""
    kind, write = WRITERS[request.param]
    return kind, write(tmp_path / request.param)


def test_small_blocks_give_the_dataset_one_block_gives(
    written: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    kind, source = written
    config = LoaderConfig(test_quantile=0.9)
    with caplog.at_level(logging.INFO, logger=batches.__name__):
        whole = load_dataset(kind, source, config)
        streamed = load_dataset(kind, source, replace(config, block_bytes=SMALL))
    fallbacks = [r for r in caplog.records if r.name == batches.__name__]
    assert not fallbacks, "a well-formed file is read by Arrow, not line by line"
    assert_same(whole, streamed)


def test_arrow_reads_what_the_line_readers_read(
    written: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    kind, source = written
    config = LoaderConfig(click_threshold=3.5, seed=5, block_bytes=SMALL)
    by_arrow = load_dataset(kind, source, config)
    line_reader_only(monkeypatch)
    assert_same(by_arrow, load_dataset(kind, source, config))


def test_a_doubtful_file_is_read_line_by_line_with_the_same_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Blank lines of spaces, a Unicode space around a field, a byte-order mark: the line reader
    decides, and rows Arrow had appended before its doubt are not counted twice."""
    source = write_taobao(tmp_path / "tb")
    expected = load_dataset("taobao", source)
    path = source / "UserBehavior.csv"
    lines = path.read_text().splitlines()
    lines[150] = lines[150].replace(",", "\u3000,", 1)  # str.strip() removes it
    path.write_text("\n".join([*lines[:120], "   ", *lines[120:]]) + "\n")
    with caplog.at_level(logging.INFO, logger=batches.__name__):
        again = load_dataset("taobao", source, LoaderConfig(block_bytes=SMALL))
    assert "read line by line" in caplog.text
    assert_same(expected, again)


def test_the_block_bounds_every_batch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = write_taobao(tmp_path / "tb")
    path = source / "UserBehavior.csv"
    shortest = min(len(line) + 1 for line in path.read_bytes().splitlines())
    log = read_taobao(source, LoaderConfig(block_bytes=SMALL))
    assert log.largest_batch * shortest <= SMALL
    assert log.batches >= path.stat().st_size // SMALL
    assert len(log) == len(path.read_bytes().splitlines())
    # The line reader (a line of spaces sends the file there) appends every block_bytes // 64.
    path.write_text(path.read_text() + "  \n")
    with caplog.at_level(logging.INFO, logger=batches.__name__):
        log = read_taobao(source, LoaderConfig(block_bytes=SMALL))
    assert "read line by line" in caplog.text
    assert log.largest_batch == SMALL // 64 and log.batches >= len(log) // (SMALL // 64)


@pytest.mark.parametrize("block_bytes", [SMALL, 64 << 20])
def test_a_sample_keeps_exactly_the_chosen_users_rows(tmp_path: Path, block_bytes: int) -> None:
    source = write_taobao(tmp_path / "tb")
    everything = read_rows(read_taobao(source, LoaderConfig()))
    users = sorted({user for user, *_ in everything})
    for seed in (0, 1):
        config = LoaderConfig(sample_users=6, seed=seed, block_bytes=block_bytes)
        sampled = read_rows(read_taobao(source, config))
        chosen = chosen_users(users, 6, seed)
        assert sampled == [row for row in everything if row[0] in chosen]
        dataset = load_dataset("taobao", source, config)
        assert dataset.user_ids.tolist() == sorted(f"u{user}" for user in chosen)
        assert dataset.meta["loader"]["sample"] == {"users": 6, "since": None, "until": None}
        assert_same(dataset, load_dataset("taobao", source, config))  # the same per seed
    assert chosen_users(users, 6, 0) != chosen_users(users, 6, 1)


def test_every_format_samples_users_and_time(written: tuple[str, Path]) -> None:
    kind, source = written
    whole = load_dataset(kind, source)
    imp = whole.impressions.ts
    since, until = int(np.quantile(imp, 0.2)), int(np.quantile(imp, 0.9))
    config = LoaderConfig(sample_users=5, since=since, until=until, block_bytes=SMALL)
    sampled = load_dataset(kind, source, config)
    assert len(sampled.user_ids) == 5 and set(sampled.user_ids) <= set(whole.user_ids)
    for ts in (sampled.impressions.ts, sampled.behaviours.ts):
        assert since <= ts.min() and ts.max() < until
    assert sampled.meta["interactions"] < whole.meta["interactions"]
    # More users asked for than there are: the whole log, only the meta says it was a sample.
    everyone = load_dataset(kind, source, LoaderConfig(sample_users=10_000))
    assert everyone.meta["loader"].pop("sample")["users"] == 10_000
    assert_same(whole, everyone)


@pytest.mark.parametrize(
    ("name", "file", "bad_line", "message"),
    [
        ("taobao", "UserBehavior.csv", "1,2,3,click,1600000000", "unknown behavior_type"),
        ("taobao", "UserBehavior.csv", "1,2,3,pv,noon", "timestamp 'noon' is not an integer"),
        ("taobao", "UserBehavior.csv", "1,2,3,pv", "expected 5 comma-separated fields, got 4"),
        ("movielens-dat", "ratings.dat", "1::2::x::3", "rating and timestamp must be numbers"),
        ("movielens-csv", "ratings.csv", "1,2,4.0,3,4", "expected 4 fields, got 5"),
        ("movielens-csv", "ratings.csv", "1,2,good,3", "rating and timestamp must be numbers"),
        ("movielens-csv", "tags.csv", "1,2,nice,later", "timestamp must be a whole number"),
        ("recbole", "mini.inter", "7\t3\tfive\t1600000000", "rating: 'five' is not a float"),
        ("recbole", "mini.inter", "\t3\t4\t1600000000", "user_id and item_id are required"),
        ("recbole", "mini.item", "\tMovie\tDrama", "item_id is required"),
        ("amazon", "Toys.jsonl", '{"rating": 5, "user_id": "A"', "invalid JSON"),
        ("amazon", "Toys.jsonl", '{"user_id": "A", "parent_asin": "B"}', "missing rating"),
        ("amazon", "meta_Toys.jsonl", '{"title": "no asin"}', "missing parent_asin"),
    ],
)
def test_a_broken_line_in_a_later_block_is_named(
    name: str, file: str, bad_line: str, message: str, tmp_path: Path
) -> None:
    kind, write = WRITERS[name]
    path = write(tmp_path / name) / file
    # Past the first blocks, in all but the smallest files.
    late = LoaderConfig(block_bytes=SMALL)
    check_broken_line_named(kind, path, bad_line, message, at=lambda n: n * 3 // 4, config=late)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sample_users": 0}, "sample_users must be >= 1"),
        ({"since": 10, "until": 10}, r"since \(10\) must come before until \(10\)"),
        ({"block_bytes": 100}, "block_bytes must lie in"),
    ],
)
def test_a_bad_sample_or_block_is_refused(settings: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoaderConfig(**settings)


def test_the_spaces_arrow_trims_are_those_str_strip_removes() -> None:
    python = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    assert set(batches.ASCII_SPACE + batches.OTHER_SPACE) == python


def test_the_commands_load_a_sample(tmp_path: Path) -> None:
    """``reaseq build`` and ``reaseq knowledge`` pass --sample-users, --since, --until on."""
    from cli.knowledge import SourceFormat, load_source

    source = write_recbole(tmp_path / "rb")
    dataset = load_source(SourceFormat.recbole, source, seed=2, sample_users=7)
    assert len(dataset.user_ids) == 7
    assert dataset.meta["loader"]["sample"] == {"users": 7, "since": None, "until": None}
