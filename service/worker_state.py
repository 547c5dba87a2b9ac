"""The folder through which the workers of one service share what the admin endpoints change.

``reaseq serve`` with several workers makes one for the run (``REASEQ_WORKER_STATE_DIR``, removed
at stop) and empties it before the workers start, so a service never starts with an earlier
run's changes. It holds:

- :data:`EXPERIMENT_FILE`: the admin endpoint's last experiment change
  (:mod:`service.experiments.shared`);
- :data:`BUNDLE_FILE`: the bundle version the admin endpoints activated last, which every worker
  follows as it follows the active version in Redis (:class:`FileVersionPointer`);
- :data:`EVENTS_FILE`: the events appended to the embedded store, which every worker's store
  applies in the same order (:mod:`service.stores.event_journal`).

Writers replace a file whole (written aside, then renamed) or append one line per write under
a lock (``flock``) on the file, so a reader sees a whole change or none of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from service.errors import StoreUnavailable

EXPERIMENT_FILE = "experiment.json"
BUNDLE_FILE = "bundle_version"
EVENTS_FILE = "events.jsonl"
_FILES = (EXPERIMENT_FILE, BUNDLE_FILE, EVENTS_FILE)


def clear_worker_state(folder: Path) -> None:
    """Make ``folder`` and remove an earlier run's changes: a new service starts with none."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        (folder / name).unlink(missing_ok=True)


def replace_file(path: Path, content: bytes) -> None:
    """Write ``content`` beside ``path`` and rename it over: a reader sees all of it or the old."""
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    aside.write_bytes(content)
    os.replace(aside, path)


class FileVersionPointer:
    """The active bundle version of the workers of one service, in :data:`BUNDLE_FILE`: what
    :class:`service.bundles.active_version.ActiveVersionPointer` is in Redis for a fleet."""

    def __init__(self, folder: Path) -> None:
        self._path = folder / BUNDLE_FILE

    async def read(self) -> str | None:
        """The version named (None when none was activated); raises ``StoreUnavailable`` when
        the file cannot be read."""
        try:
            text = self._path.read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreUnavailable(f"cannot read the workers' bundle version: {error}") from error
        return text or None

    async def write(self, version: str) -> None:
        try:
            replace_file(self._path, version.encode())
        except OSError as error:
            raise StoreUnavailable(f"cannot write the workers' bundle version: {error}") from error

    async def close(self) -> None:
        """Nothing to release."""
