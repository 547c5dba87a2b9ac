"""One contract suite for every store backend (Redis as a real server and a real cluster)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from service.bundles.loaded import LoadedBundle
from service.stores.base import FetchQuery, RankingStore, UserSequence
from service.stores.event_log import AppendResult, NewEvents
from tests.support.serving import CONTRACT_STORES
from tests.support.users import NOW, DemoUsers

pytestmark = pytest.mark.anyio


@pytest.fixture(params=CONTRACT_STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_answers_a_ping(store: RankingStore) -> None:
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
    result = await store.append_events("u2", NewEvents.of(events))
    assert result == AppendResult(appended=10, duplicates=0, sequence_length=max_length)
    fetched = await store.fetch(FetchQuery("u2", ["i1"]))
    assert fetched.sequence is not None
    assert fetched.sequence.item_ids == items[-max_length:]  # newest kept, oldest first
    assert list(fetched.sequence.timestamps) == sorted(fetched.sequence.timestamps)
    expected_vectors, _ = bundle.items.lookup(items[-max_length:])
    np.testing.assert_array_equal(fetched.sequence_vectors, expected_vectors)


async def test_append_events_creates_a_user(store: RankingStore) -> None:
    result = await store.append_events("fresh", NewEvents.of(UserSequence.of(["i7"], [2], [NOW])))
    assert result.sequence_length == 1
    fetched = await store.fetch(FetchQuery("fresh", []))
    assert fetched.sequence is not None and fetched.sequence.item_ids == ["i7"]
    assert list(fetched.sequence.events) == [2]


def _events(*rows: tuple[str, str | None, int]) -> NewEvents:
    """``(item_id, event_id, seconds after NOW)`` rows, all clicks."""
    sequence = UserSequence.of([r[0] for r in rows], [1] * len(rows), [NOW + r[2] for r in rows])
    return NewEvents.of(sequence, [r[1] for r in rows])


async def test_replayed_event_ids_are_not_appended_twice(
    store: RankingStore, bundle: LoadedBundle
) -> None:
    batch = _events(("i7", "e1", 1), ("i8", "e2", 2))
    assert await store.append_events("idem", batch) == AppendResult(2, 0, 2)
    assert await store.append_events("idem", batch) == AppendResult(0, 2, 2)
    mixed = _events(("i8", "e2", 2), ("i9", "e3", 3), ("i9", "e3", 3), ("i9", None, 3))
    assert await store.append_events("idem", mixed) == AppendResult(2, 2, 4)
    fetched = await store.fetch(FetchQuery("idem", []))
    assert fetched.sequence is not None
    assert fetched.sequence.item_ids == ["i7", "i8", "i9", "i9"]
    expected, _ = bundle.items.lookup(["i7", "i8", "i9", "i9"])
    np.testing.assert_array_equal(fetched.sequence_vectors, expected)


async def test_out_of_order_events_are_inserted_in_place(
    store: RankingStore, bundle: LoadedBundle
) -> None:
    await store.append_events("late", _events(("i1", "a", 10), ("i3", "c", 30)))
    result = await store.append_events("late", _events(("i2", "b", 20), ("i0", "z", 0)))
    assert result == AppendResult(2, 0, 4)
    fetched = await store.fetch(FetchQuery("late", []))
    assert fetched.sequence is not None
    assert fetched.sequence.item_ids == ["i0", "i1", "i2", "i3"]
    assert list(fetched.sequence.timestamps) == [NOW, NOW + 10, NOW + 20, NOW + 30]
    expected, _ = bundle.items.lookup(["i0", "i1", "i2", "i3"])
    np.testing.assert_array_equal(fetched.sequence_vectors, expected)


async def test_an_event_older_than_a_full_sequence_falls_outside_it(
    store: RankingStore, bundle: LoadedBundle
) -> None:
    max_length = bundle.manifest.max_lengths.sequence
    await store.append_events("full", _events(*((f"i{n}", f"e{n}", 100 + n) for n in range(10))))
    result = await store.append_events("full", _events(("i1", "old", 0)))
    assert result == AppendResult(1, 0, max_length)
    fetched = await store.fetch(FetchQuery("full", []))
    assert fetched.sequence is not None
    assert fetched.sequence.item_ids == [f"i{n}" for n in range(10)][-max_length:]


async def test_concurrent_appends_lose_nothing(store: RankingStore) -> None:
    batches = [_events((f"i{n}", f"e{n}", n), (f"i{n}", "shared", 50)) for n in range(6)]
    results = await asyncio.gather(*(store.append_events("busy", b) for b in batches))
    assert sum(r.appended for r in results) == 7  # six own events, "shared" once
    assert sum(r.duplicates for r in results) == 5
    fetched = await store.fetch(FetchQuery("busy", []))
    assert fetched.sequence is not None and len(fetched.sequence) == max(
        r.sequence_length for r in results
    )
