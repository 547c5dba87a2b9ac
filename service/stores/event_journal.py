"""Events appended to the embedded store, shared by the workers of one service through a file.

Each line of the journal (:data:`service.worker_state.EVENTS_FILE`) is one append that added
events: the user and the events as they were sent, with their IDs. Every worker's store applies
the lines in the file's order with the same rule (:func:`service.stores.event_log.merge_events`),
so all of them hold the same sequences and the same windows of event IDs. An append takes a lock
on the file (``flock``), applies the lines it has not seen yet, merges its own events and, when
any were appended, writes its line, all before the lock is let go: the file's order is the order
in which the appends happened. A fetch applies the lines written since the last one first, so an
event appended through one worker is in the next ranking of every worker.

A store that starts (a worker that starts or restarts, a bundle activation) reads the journal
from its beginning: it keeps the events appended since the service started, as the others do.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson

from service.stores.base import UserSequence
from service.stores.event_log import NewEvents

log = logging.getLogger(__name__)


class EventJournal:
    """One reader and writer of the journal at ``path``: remembers how far it has read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def grown(self) -> bool:
        """Whether lines were written since this reader's last (a ``stat``, no read)."""
        try:
            return self.path.stat().st_size > self._offset
        except FileNotFoundError:
            return False

    def unread(self) -> list[tuple[str, NewEvents]]:
        """The whole lines written since the last call, in order; a line that cannot be read
        is logged and skipped."""
        try:
            with self.path.open("rb") as journal:
                journal.seek(self._offset)
                data = journal.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._offset += end
        found = []
        for line in data[:end].splitlines():
            try:
                found.append(_decode(line))
            except (ValueError, TypeError, KeyError) as error:
                log.warning("skipped an unreadable line of event journal %s: %s", self.path, error)
        return found

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The journal to this process alone (other workers' appends wait)."""
        descriptor = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def write(self, user_id: str, events: NewEvents) -> None:
        """Append one line; call while :meth:`locked`, after :meth:`unread` (so the line is the
        last one, and this reader has applied it already)."""
        line = _encode(user_id, events)
        with self.path.open("ab") as journal:
            if journal.tell() > self._offset:
                # The unfinished line of a writer that died: ended here, and skipped by all.
                journal.write(b"\n")
            journal.write(line)
            self._offset = journal.tell()


def _encode(user_id: str, events: NewEvents) -> bytes:
    sequence = events.sequence
    body = {
        "user_id": user_id,
        "item_ids": sequence.item_ids,
        "events": sequence.events.tolist(),
        "timestamps": sequence.timestamps.tolist(),
        "event_ids": list(events.event_ids),
    }
    return orjson.dumps(body) + b"\n"


def _decode(line: bytes) -> tuple[str, NewEvents]:
    body = orjson.loads(line)
    sequence = UserSequence(
        [str(item) for item in body["item_ids"]],
        np.asarray(body["events"], np.uint8),
        np.asarray(body["timestamps"], np.int64),
    )
    return str(body["user_id"]), NewEvents(sequence, tuple(body["event_ids"]))
