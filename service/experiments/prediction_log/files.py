"""The prediction log as rotating JSON Lines files, written by a background thread.

Callers only queue a record (:class:`~service.experiments.prediction_log.base.RecordQueue`);
the writer thread takes what is queued, encodes it with orjson and appends it as one write, so
neither encoding nor disk I/O runs on the event loop. Each worker process writes files of its own,
``predictions-<UTC yyyymmddTHHMMSSffffff>-<pid>.jsonl``: names sort in the order they were
opened, and several workers may share the folder. A file is closed once it passes its size limit
(it ends at the batch that took it past), and a worker removes only the oldest files it wrote
itself, never another process's.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from service.experiments.prediction_log.base import (
    LINGER_S,
    LogRecord,
    RecordQueue,
    WriteFailures,
    encode_records,
    log,
)
from service.experiments.records import LOG_FILE_PREFIX, LOG_FILE_SUFFIX
from service.observability.prediction_log_metrics import PredictionLogMetrics

#: Records the writer encodes and appends in one write, at most.
BATCH_RECORDS = 1024
CLOSE_TIMEOUT_S = 5.0
_ONE_TICK = timedelta(microseconds=1)
_NAME_ATTEMPTS = 100


class LineSink(Protocol):
    """What the writer thread appends encoded batches to."""

    def write(self, data: bytes) -> None:
        """Append ``data`` (whole lines) or raise ``OSError`` having appended none of it."""
        ...

    def close(self) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_writable(folder: Path) -> None:
    """Create ``folder`` if missing and check a file can be written in it; ``OSError`` if not."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


class RotatingFiles:
    """This process's log files in ``folder``: a new one once the current one reaches
    ``max_bytes``, and at most ``max_files`` of those it opened (the oldest are removed)."""

    def __init__(
        self,
        folder: Path,
        max_bytes: int,
        max_files: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.folder = folder
        self._max_bytes = max_bytes
        self._max_files = max(1, max_files)
        self._clock = clock
        self._pid = os.getpid()
        self._fd: int | None = None
        self._size = 0
        self._opened: deque[Path] = deque()
        self._last_stamp: datetime | None = None

    @property
    def files(self) -> list[Path]:
        """The files kept, oldest first; the last is the one written now (if open)."""
        return list(self._opened)

    def write(self, data: bytes) -> None:
        fd = self._fd if self._fd is not None else self._open()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            self._undo_partial_write(fd)
            raise
        self._size += len(data)
        if self._size >= self._max_bytes:
            self.close()

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with suppress(OSError):
                os.close(fd)

    def _undo_partial_write(self, fd: int) -> None:
        # A file holds whole lines only: cut what part of the batch got in. Failing that (the
        # file or its disk is gone), the next batch starts a new file.
        try:
            os.ftruncate(fd, self._size)
        except OSError:
            self.close()

    def _open(self) -> int:
        for _ in range(_NAME_ATTEMPTS):
            path = self.folder / self._next_name()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(f"no free log file name in {self.folder}")
        self._fd, self._size = fd, 0
        self._opened.append(path)
        self._remove_oldest()
        return fd

    def _next_name(self) -> str:
        stamp = self._clock()
        if self._last_stamp is not None and stamp <= self._last_stamp:
            stamp = self._last_stamp + _ONE_TICK  # names must sort in the order files opened
        self._last_stamp = stamp
        return f"{LOG_FILE_PREFIX}{stamp:%Y%m%dT%H%M%S%f}-{self._pid}{LOG_FILE_SUFFIX}"

    def _remove_oldest(self) -> None:
        while len(self._opened) > self._max_files:
            oldest = self._opened.popleft()
            try:
                oldest.unlink(missing_ok=True)
            except OSError as error:
                log.warning("prediction log: cannot remove the old file %s: %s", oldest, error)


class FileLog:
    """A :class:`~service.experiments.prediction_log.base.PredictionLog` appending JSON Lines to
    ``sink`` from a background thread."""

    def __init__(
        self,
        sink: LineSink,
        queue_size: int,
        metrics: PredictionLogMetrics,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        linger_s: float = LINGER_S,
    ) -> None:
        self._sink = sink
        self._linger_s = linger_s
        self._queue = RecordQueue(queue_size, metrics)
        self._failures = WriteFailures("file", metrics)
        self._close_timeout_s = close_timeout_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-log-file", daemon=True)
        self._thread.start()

    def record(self, record: LogRecord) -> bool:
        if not self._queue.put(record):
            return False
        if not self._wake.is_set():
            self._wake.set()
        return True

    async def close(self) -> None:
        self._queue.closed = True
        self._stopping.set()
        self._wake.set()
        await asyncio.to_thread(self._thread.join, self._close_timeout_s)
        if self._thread.is_alive():
            lost = self._queue.drop_all()
            log.warning(
                "prediction log: the file writer did not finish within %.1f s: %d queued "
                "records dropped",
                self._close_timeout_s,
                lost,
            )

    def _run(self) -> None:
        try:
            while True:
                # Cleared before taking: a record queued after the take sets it again.
                self._wake.clear()
                batch = self._queue.take(BATCH_RECORDS)
                if batch:
                    self._write(batch)
                elif self._stopping.is_set():
                    return
                else:
                    self._wake.wait()
                    self._stopping.wait(self._linger_s)  # let more gather, unless closing
        finally:
            self._sink.close()

    def _write(self, batch: list[LogRecord]) -> None:
        records, lines = encode_records(batch, self._failures)
        if not lines:
            return
        lines.append(b"")
        try:
            self._sink.write(b"\n".join(lines))
        except Exception as error:  # the thread outlives any failure: the next batch may pass
            self._failures.failed(f"{type(error).__name__}: {error}", len(records))
        else:
            self._failures.succeeded(records)


def open_file_log(
    folder: Path,
    max_bytes: int,
    max_files: int,
    queue_size: int,
    metrics: PredictionLogMetrics,
) -> FileLog:
    """The file log in ``folder``, checked writable first (``OSError`` if it is not)."""
    check_writable(folder)
    return FileLog(RotatingFiles(folder, max_bytes, max_files), queue_size, metrics)
