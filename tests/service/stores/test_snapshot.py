"""The embedded store's user snapshot: a missing file, and what its writer refuses."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest

from service.bundles.loaded import LoadedBundle
from service.stores.base import FetchQuery
from service.stores.config import EmbeddedStoreConfig
from service.stores.embedded import EmbeddedStore, write_user_snapshot


def test_missing_snapshot_means_no_users(
    tmp_path: Path, bundle: LoadedBundle, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        store = EmbeddedStore.open(EmbeddedStoreConfig(users_path=tmp_path / "none.npz"), bundle)
    assert "not found" in caplog.text
    result = asyncio.run(store.fetch(FetchQuery("u1", ["i1"])))
    assert result.sequence is None and result.candidate_known.all()


@pytest.mark.parametrize(
    ("offsets", "message"),
    [([0, 2], "offsets must be"), ([0, 2, 1, 3], "offsets must be"), ([0, 2, 1], "decrease")],
)
def test_snapshot_writer_rejects_bad_offsets(
    tmp_path: Path, offsets: list[int], message: str
) -> None:
    users = ["a", "b"] if len(offsets) == 3 else ["a", "b", "c"][: len(offsets) - 1]
    with pytest.raises(ValueError, match=message):
        write_user_snapshot(
            tmp_path / "u.npz", users, offsets, ["i1"], np.ones(1, np.uint8), np.ones(1, np.int64)
        )


def test_snapshot_writer_rejects_duplicate_users(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        write_user_snapshot(tmp_path / "u.npz", ["a", "a"], [0, 1, 1], ["i1"], [1], [5])
