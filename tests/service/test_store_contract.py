"""One contract suite for every store backend (Redis as a real server)."""

from __future__ import annotations

import numpy as np
import pytest

from service.bundle import LoadedBundle
from service.stores.base import FetchQuery, RankingStore, StoreCapabilities, UserSequence
from tests.service.user_fixture import NOW, DemoUsers

pytestmark = pytest.mark.anyio


async def test_declares_capabilities(store: RankingStore) -> None:
    assert isinstance(type(store).capabilities, StoreCapabilities)
    assert await store.ping()


async def test_known_user_sequence_and_generated(
    store: RankingStore, bundle: LoadedBundle, users: DemoUsers
) -> None:
    result = await store.fetch(FetchQuery("u1", ["i1", "i3"]))
    expected = users.sequences["u1"]
    assert result.sequence is not None
    assert result.sequence.item_ids == expected.item_ids
    np.testing.assert_array_equal(result.sequence.events, expected.events)
    np.testing.assert_array_equal(result.sequence.timestamps, expected.timestamps)
    expected_vectors, _ = bundle.items.lookup(expected.item_ids)
    np.testing.assert_array_equal(result.sequence_vectors, expected_vectors)
    assert result.sequence_vectors.dtype == np.float32
    assert result.generated is not None
    assert result.generated.item_ids == ["i4", "i6"]
    assert result.generated.gbr_version == "gbr-test"
    np.testing.assert_array_equal(result.generated.vectors, users.generated["u1"].vectors)


async def test_user_without_generated_block(store: RankingStore) -> None:
    result = await store.fetch(FetchQuery("u2", ["i1"]))
    assert result.sequence is not None and result.sequence.item_ids == ["i5"]
    assert result.generated is None


async def test_known_user_with_empty_history(store: RankingStore, bundle: LoadedBundle) -> None:
    result = await store.fetch(FetchQuery("u_empty", ["i1"]))
    assert result.sequence is not None and len(result.sequence) == 0
    assert result.sequence_vectors.shape == (0, bundle.items.dim)


async def test_unknown_user(store: RankingStore, bundle: LoadedBundle) -> None:
    result = await store.fetch(FetchQuery("nobody", ["i1"]))
    assert result.sequence is None
    assert result.generated is None
    assert result.sequence_vectors.shape == (0, bundle.items.dim)


async def test_candidate_and_event_items(store: RankingStore, bundle: LoadedBundle) -> None:
    result = await store.fetch(FetchQuery("u1", ["i1", "missing", "i15"], ["i9", "gone"]))
    np.testing.assert_array_equal(result.candidate_known, [True, False, True])
    np.testing.assert_array_equal(result.event_item_known, [True, False])
    table, _ = bundle.items.lookup(["i1", "i15", "i9"])
    # float16 in the store, float32 out, exactly the bundle's values
    np.testing.assert_array_equal(result.candidate_vectors[[0, 2]], table[:2])
    np.testing.assert_array_equal(result.event_item_vectors[0], table[2])
    np.testing.assert_array_equal(result.candidate_vectors[1], bundle.items.default_vector)
    np.testing.assert_array_equal(result.event_item_vectors[1], bundle.items.default_vector)
    assert result.candidate_vectors.dtype == np.float32


async def test_no_items_asked(store: RankingStore, bundle: LoadedBundle) -> None:
    result = await store.fetch(FetchQuery("u1", []))
    assert result.candidate_vectors.shape == (0, bundle.items.dim)
    assert result.event_item_known.shape == (0,)


async def test_append_events_caps_to_bundle_length(
    store: RankingStore, bundle: LoadedBundle
) -> None:
    max_length = bundle.manifest.max_lengths.sequence
    items = [f"i{n}" for n in range(10)]
    events = UserSequence.of(items[::-1], [1] * 10, [NOW + n for n in range(10)][::-1])
    assert await store.append_events("u2", events) == max_length
    result = await store.fetch(FetchQuery("u2", ["i1"]))
    assert result.sequence is not None
    assert result.sequence.item_ids == items[-max_length:]  # newest kept, oldest first
    assert list(result.sequence.timestamps) == sorted(result.sequence.timestamps)
    expected_vectors, _ = bundle.items.lookup(items[-max_length:])
    np.testing.assert_array_equal(result.sequence_vectors, expected_vectors)


async def test_append_events_creates_a_user(store: RankingStore) -> None:
    assert await store.append_events("fresh", UserSequence.of(["i7"], [2], [NOW])) == 1
    result = await store.fetch(FetchQuery("fresh", []))
    assert result.sequence is not None and result.sequence.item_ids == ["i7"]
    assert list(result.sequence.events) == [2]
