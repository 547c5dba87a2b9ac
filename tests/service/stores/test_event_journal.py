"""The embedded stores of several workers share appended events through one journal file: two
stores over one journal stand for two workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from service.bundles.loaded import LoadedBundle
from service.stores.base import FetchQuery, UserSequence
from service.stores.config import EmbeddedStoreConfig
from service.stores.embedded import EmbeddedStore
from service.stores.event_journal import EventJournal
from service.stores.event_log import AppendResult, NewEvents
from tests.support.users import NOW

pytestmark = pytest.mark.anyio


def _events(*rows: tuple[str, str | None, int]) -> NewEvents:
    """``(item_id, event_id, seconds after NOW)`` rows, all clicks."""
    sequence = UserSequence.of([r[0] for r in rows], [1] * len(rows), [NOW + r[2] for r in rows])
    return NewEvents.of(sequence, [r[1] for r in rows])


@pytest.fixture
async def worker_store(
    users_snapshot: Path, bundle: LoadedBundle, tmp_path: Path
) -> AsyncIterator[Callable[[], EmbeddedStore]]:
    """A new store of another worker over the same journal, closed at the end."""
    config = EmbeddedStoreConfig(users_path=users_snapshot, journal_path=tmp_path / "events")
    opened: list[EmbeddedStore] = []

    def open_store() -> EmbeddedStore:
        opened.append(EmbeddedStore.open(config, bundle))
        return opened[-1]

    yield open_store
    for store in opened:
        await store.close()


async def _items(store: EmbeddedStore, user_id: str) -> list[str]:
    fetched = await store.fetch(FetchQuery(user_id, []))
    return [] if fetched.sequence is None else fetched.sequence.item_ids


async def test_an_append_through_one_worker_is_in_the_next_fetch_of_another(
    worker_store: Callable[[], EmbeddedStore],
) -> None:
    first, second = worker_store(), worker_store()
    assert await first.append_events("fresh", _events(("i7", "e1", 1))) == AppendResult(1, 0, 1)
    assert await _items(second, "fresh") == ["i7"]
    # The event ID is in the other worker's window too: a replay there is a duplicate.
    replay = _events(("i7", "e1", 1), ("i8", "e2", 2))
    assert await second.append_events("fresh", replay) == AppendResult(1, 1, 2)
    assert await _items(first, "fresh") == ["i7", "i8"]


async def test_appends_apply_in_the_journals_order_on_every_worker(
    worker_store: Callable[[], EmbeddedStore],
) -> None:
    first, second = worker_store(), worker_store()
    # Interleaved, out of time order, each through another worker, the second never fetching.
    await first.append_events("u1", _events(("i3", None, 30)))
    await second.append_events("u1", _events(("i1", None, 10), ("i2", None, 20)))
    await first.append_events("u1", _events(("i4", None, 20)))
    assert await _items(first, "u1") == await _items(second, "u1")
    # A worker that starts later (or a store made by an activation) replays the journal.
    assert await _items(worker_store(), "u1") == await _items(first, "u1")


async def test_an_appended_user_with_a_stored_history_keeps_it_on_every_worker(
    worker_store: Callable[[], EmbeddedStore],
) -> None:
    first, second = worker_store(), worker_store()
    stored = await _items(first, "u1")
    assert stored, "the demo snapshot has a history for u1"
    await first.append_events("u1", _events(("i9", "e9", 10**6)))
    appended = await _items(first, "u1")
    assert appended[-1] == "i9" and appended[:-1] == stored[-(len(appended) - 1) :]
    assert await _items(second, "u1") == appended


async def test_an_unfinished_line_is_skipped_and_later_lines_are_read(
    worker_store: Callable[[], EmbeddedStore], tmp_path: Path
) -> None:
    first = worker_store()
    await first.append_events("fresh-2", _events(("i1", None, 1)))
    with (tmp_path / "events").open("ab") as journal:
        journal.write(b'{"user_id": "fresh-2", "item_')  # a writer that died mid-line
    second = worker_store()
    await second.append_events("fresh-2", _events(("i2", None, 2)))
    assert await _items(first, "fresh-2") == ["i1", "i2"]
    assert await _items(worker_store(), "fresh-2") == ["i1", "i2"]


def test_a_reader_takes_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "events"
    writer, reader = EventJournal(path), EventJournal(path)
    assert not reader.grown() and reader.unread() == []
    with writer.locked():
        writer.unread()
        writer.write("u1", _events(("i1", "e1", 1)))
    with path.open("ab") as journal:
        journal.write(b'{"user_id": "u1"')  # still being written
    assert reader.grown()
    [(user_id, events)] = reader.unread()
    assert (user_id, events.sequence.item_ids, events.event_ids) == ("u1", ["i1"], ("e1",))
    assert reader.grown()  # the unfinished line is still to come
    assert reader.unread() == []
