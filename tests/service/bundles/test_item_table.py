"""The item table: a float32 copy in memory when it fits the budget, else the mapped file; both
give the same vectors, and the service answers the same either way."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from service.bundles.loaded import LoadedBundle, load_item_table
from service.contracts.manifest import read_manifest
from tests.support.serving import Serving


def _table_bytes_as_float32(bundle_dir: Path) -> int:
    manifest = read_manifest(bundle_dir)
    return manifest.item_table.rows * manifest.dimensions.item_dim * 4


def test_a_table_within_the_budget_is_held_as_float32(bundle_root: Path) -> None:
    bundle_dir = bundle_root / "test-1"
    size = _table_bytes_as_float32(bundle_dir)
    mapped = load_item_table(bundle_dir, read_manifest(bundle_dir))
    held = load_item_table(bundle_dir, read_manifest(bundle_dir), float32_max_bytes=size)
    assert not mapped.in_memory and mapped.vectors.dtype == np.float16
    assert not isinstance(mapped.vectors, np.memmap)  # a plain view of the mapped file
    assert held.in_memory and held.vectors.dtype == np.float32
    np.testing.assert_array_equal(held.vectors, mapped.vectors.astype(np.float32))


def test_a_table_over_the_budget_stays_mapped(bundle_root: Path) -> None:
    bundle_dir = bundle_root / "test-1"
    size = _table_bytes_as_float32(bundle_dir)
    table = load_item_table(bundle_dir, read_manifest(bundle_dir), float32_max_bytes=size - 1)
    assert not table.in_memory and table.vectors.dtype == np.float16


@pytest.mark.parametrize("ids", [["i3", "i1", "i11"], ["i3", "nope", "i1"], ["nope"], []])
def test_both_tables_look_up_the_same_vectors(bundle_root: Path, ids: list[str]) -> None:
    bundle_dir = bundle_root / "test-1"
    mapped = LoadedBundle.load(bundle_dir).items
    held = LoadedBundle.load(
        bundle_dir, float32_items_max_bytes=_table_bytes_as_float32(bundle_dir)
    ).items
    mapped_vectors, mapped_known = mapped.lookup(ids)
    held_vectors, held_known = held.lookup(ids)
    assert held_vectors.dtype == np.float32 and held_vectors.shape == (len(ids), held.dim)
    np.testing.assert_array_equal(held_vectors, mapped_vectors)
    np.testing.assert_array_equal(held_known, mapped_known)
    np.testing.assert_array_equal(
        held_vectors[~held_known], np.tile(held.default_vector, (int((~held_known).sum()), 1))
    )


@pytest.mark.anyio
async def test_the_service_ranks_the_same_from_either_table(
    serving: Serving, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"user_id": "u1", "candidates": ["i1", "i11", "i3", "unknown-item"]}
    answers = []
    for budget_mb, held in ((0.0, "float16 memory-mapped"), (256.0, "float32 in memory")):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="service.bundles.loaded"):
            async with serving(item_table_float32_mb=budget_mb) as client:
                response = await client.post("/v1/rank", json=body)
                assert response.status_code == 200, response.text
                answers.append(response.json()["items"])
        assert any(held in record.getMessage() for record in caplog.records)
    assert answers[0] == answers[1]
