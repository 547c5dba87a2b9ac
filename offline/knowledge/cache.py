"""The knowledge cache: every agent answer on disk, keyed so reruns only do new work.

One SQLite file (stdlib ``sqlite3``, no server). A row is keyed by the item's content hash, the
agent role, the role's prompt version and the model that answered, so a rerun skips items whose
metadata, prompt and model are unchanged, and an edited item or prompt is answered again. The
row keeps the whole answer, reasoning included, for audit; only its structured fields reach the
record. Writes are committed per item, so a crash loses at most the items in flight.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from types import TracebackType
from typing import Self

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    content_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    model TEXT NOT NULL,
    item_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (content_hash, role, prompt_version, model)
)
"""


#: How long a connection waits for another process's lock (workers of one pool share the file).
_BUSY_TIMEOUT_S = 30.0
_WAL_ATTEMPTS = 100


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch the file to write-ahead logging once. The mode is stored in the file, so later
    openers only read it; switching needs an exclusive lock, for which SQLite does not wait,
    so an opener racing another process's write retries."""
    for attempt in range(_WAL_ATTEMPTS):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05)


class KnowledgeCache:
    """Agent answers by (content hash, role, prompt version, model)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S)
        _use_wal(self._db)
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get(self, content_hash: str, role: str, prompt_version: str, model: str) -> str | None:
        row = self._db.execute(
            "SELECT answer FROM answers WHERE content_hash=? AND role=? AND prompt_version=? "
            "AND model=?",
            (content_hash, role, prompt_version, model),
        ).fetchone()
        return None if row is None else str(row[0])

    def put(
        self,
        content_hash: str,
        role: str,
        prompt_version: str,
        model: str,
        item_id: str,
        answer: str,
    ) -> None:
        """Stage an answer; :meth:`commit` makes it durable."""
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
            (content_hash, role, prompt_version, model, item_id, answer, time.time()),
        )

    def commit(self) -> None:
        self._db.commit()

    def answers_for(self, item_id: str) -> dict[str, str]:
        """Every stored answer for an item, by role (latest first wins): for audit."""
        rows = self._db.execute(
            "SELECT role, answer FROM answers WHERE item_id=? ORDER BY created_at", (item_id,)
        ).fetchall()
        return {str(role): str(answer) for role, answer in rows}

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        self._db.commit()
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
