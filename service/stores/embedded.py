"""The embedded store: item vectors from the bundle's table, users from an in-process snapshot.

It needs nothing running, so a fresh checkout can serve. Appended events and their event IDs live
in process memory (lost on restart, not shared between replicas); the workers of one service
share them through a journal file (:mod:`service.stores.event_journal`) when it is given one.
"""

from __future__ import annotations

import logging
import threading

from service.bundles.loaded import LoadedBundle
from service.stores.base import (
    FetchQuery,
    FetchResult,
    RankingStore,
    UserSequence,
)
from service.stores.config import EmbeddedStoreConfig
from service.stores.event_journal import EventJournal
from service.stores.event_log import (
    DEFAULT_ID_WINDOW,
    AppendResult,
    NewEvents,
    merge_events,
    trim_window,
)
from service.stores.snapshot import GeneratedBlocks, UserSnapshot, write_user_snapshot

__all__ = ["EmbeddedStore", "GeneratedBlocks", "write_user_snapshot"]

log = logging.getLogger(__name__)


class EmbeddedStore(RankingStore):
    """In-process backend over a :class:`UserSnapshot` and the bundle's item table."""

    def __init__(
        self,
        bundle: LoadedBundle,
        snapshot: UserSnapshot,
        event_id_window: int = DEFAULT_ID_WINDOW,
        journal: EventJournal | None = None,
    ) -> None:
        self._items = bundle.items
        self._journal = journal
        self._max_length = bundle.manifest.max_lengths.sequence
        self._snapshot = snapshot
        self._appended: dict[str, UserSequence] = {}
        self._event_ids: dict[str, dict[str, int]] = {}
        self._event_id_window = event_id_window
        self._append_lock = threading.Lock()
        # Every stored behaviour's table row, resolved once: a fetch slices rows, no ID lookups.
        self._behaviour_rows = bundle.items.rows(snapshot.behaviour_items.tolist())
        gen_dim = snapshot.generated_dim()
        if gen_dim is not None and gen_dim != bundle.items.dim:
            raise ValueError(
                f"snapshot generated vectors have d={gen_dim}, bundle {bundle.version} has "
                f"d={bundle.items.dim}"
            )

    @classmethod
    def open(cls, config: EmbeddedStoreConfig, bundle: LoadedBundle) -> EmbeddedStore:
        if not config.users_path.is_file():
            log.warning(
                "user snapshot %s not found: serving with an empty user store", config.users_path
            )
            snapshot = UserSnapshot.empty()
        else:
            snapshot = UserSnapshot.load(config.users_path)
            log.info("loaded user snapshot %s: %d users", config.users_path, snapshot.users)
        journal = None if config.journal_path is None else EventJournal(config.journal_path)
        store = cls(bundle, snapshot, config.event_id_window, journal)
        if journal is not None:
            with store._append_lock:
                store._catch_up()
        return store

    def _sequence(self, user_id: str) -> UserSequence | None:
        appended = self._appended.get(user_id)
        return appended if appended is not None else self._snapshot.sequence(user_id)

    async def fetch(self, query: FetchQuery) -> FetchResult:
        if self._journal is not None and self._journal.grown():
            with self._append_lock:
                self._catch_up()
        appended = self._appended.get(query.user_id)
        span = None if appended is not None else self._snapshot.span(query.user_id)
        if span is not None:
            sequence = self._snapshot.sequence(query.user_id)
            sequence_vectors, _ = self._items.vectors_at(self._behaviour_rows[span])
        else:
            sequence = appended
            sequence_vectors, _ = self._items.lookup(sequence.item_ids if sequence else [])
        candidate_vectors, candidate_known = self._items.lookup(query.candidate_ids)
        event_vectors, event_known = self._items.lookup(query.event_item_ids)
        return FetchResult(
            sequence=sequence,
            sequence_vectors=sequence_vectors,
            generated=self._snapshot.generated(query.user_id),
            candidate_vectors=candidate_vectors,
            candidate_known=candidate_known,
            event_item_vectors=event_vectors,
            event_item_known=event_known,
        )

    async def ping(self) -> bool:
        return True

    async def append_events(self, user_id: str, events: NewEvents) -> AppendResult:
        # The lock keeps the read, the merge and the writes of sequence and IDs one step, even
        # for callers on other threads; the journal's lock, even for other workers.
        with self._append_lock:
            if self._journal is None:
                return self._merge(user_id, events)
            with self._journal.locked():
                self._catch_up()
                result = self._merge(user_id, events)
                if result.appended:
                    self._journal.write(user_id, events)
                return result

    def _merge(self, user_id: str, events: NewEvents) -> AppendResult:
        """Append ``events`` to the user's sequence; call holding the append lock."""
        current = self._sequence(user_id) or UserSequence.empty()
        seen = self._event_ids.get(user_id, {})
        merged = merge_events(current, seen, events, self._max_length)
        if merged.result.appended:
            self._appended[user_id] = merged.sequence
            self._event_ids[user_id] = trim_window(
                seen | merged.recorded_ids, self._event_id_window
            )
        return merged.result

    def _catch_up(self) -> None:
        """Apply the journal's lines this store has not applied; call holding the append lock."""
        assert self._journal is not None
        for user_id, events in self._journal.unread():
            self._merge(user_id, events)

    async def close(self) -> None:
        with self._append_lock:
            self._appended.clear()
            self._event_ids.clear()
