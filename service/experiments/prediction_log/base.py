"""What every prediction log sink shares: the interface, the bounded queue in front of the
writer, the encoding of a batch, and how write failures are counted and logged."""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Iterable
from typing import Protocol

import orjson

from service.experiments.records import OutcomeRecord, PredictionRecord
from service.observability.prediction_log_metrics import PredictionLogMetrics

log = logging.getLogger("service.experiments.prediction_log")

LogRecord = PredictionRecord | OutcomeRecord


class PredictionLogUnavailable(Exception):
    """The log cannot be opened as configured (an unwritable folder, no Redis store); the
    message names the setting to change."""


class PredictionLog(Protocol):
    """Where answers and outcomes go; a writer behind it does the I/O."""

    def record(self, record: LogRecord) -> bool:
        """Queue ``record`` for writing: never blocks, never raises, safe on the event loop.
        False when it was dropped (the queue is full, or the log closed), and counted."""
        ...

    async def close(self) -> None:
        """Write what is queued, waiting a bounded time, and stop; later records are dropped."""
        ...


#: How long a writer lets records gather once one arrives: a write (and a wake-up of the writer)
#: at most this often, instead of one per answer, which costs the serving threads their share of
#: the interpreter at every answer.
LINGER_S = 0.1


class RecordQueue:
    """A bounded FIFO of records between callers and one writer; a full (or closed) queue
    drops. Any thread may put; the sink that owns it wakes its writer after a put."""

    def __init__(self, capacity: int, metrics: PredictionLogMetrics) -> None:
        self._records: deque[LogRecord] = deque()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._metrics = metrics
        self.closed = False

    def put(self, record: LogRecord) -> bool:
        with self._lock:
            queued = not self.closed and len(self._records) < self._capacity
            if queued:
                self._records.append(record)
        if queued:
            self._metrics.queue_depth.inc()
        else:
            self._metrics.dropped.inc()
        return queued

    def take(self, most: int) -> list[LogRecord]:
        """Up to ``most`` records, oldest first (none when empty)."""
        with self._lock:
            batch = [self._records.popleft() for _ in range(min(most, len(self._records)))]
        if batch:
            self._metrics.queue_depth.dec(len(batch))
        return batch

    def drop_all(self) -> int:
        """Close the queue and count what it still held as dropped; returns how many."""
        with self._lock:
            self.closed = True
            lost = len(self._records)
            self._records.clear()
        if lost:
            self._metrics.queue_depth.dec(lost)
            self._metrics.dropped.inc(lost)
        return lost


def encode_records(
    batch: Iterable[LogRecord], failures: WriteFailures
) -> tuple[list[LogRecord], list[bytes]]:
    """The records that encode, and each as one JSON object (no newline); a record orjson
    cannot encode is dropped and counted as a failed write of its own."""
    records, encoded = [], []
    for record in batch:
        try:
            encoded.append(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY))
        except (TypeError, orjson.JSONEncodeError) as error:
            failures.failed(f"a {record.get('kind')} record cannot be encoded: {error}", 1)
        else:
            records.append(record)
    return records, encoded


class WriteFailures:
    """Counts failed writes and their records, and logs a burst of them once: a warning at its
    first failure and a line when a write succeeds again, never one per record."""

    def __init__(self, sink: str, metrics: PredictionLogMetrics) -> None:
        self._sink = sink
        self._metrics = metrics
        self._failed_writes = 0
        self._dropped = 0

    def failed(self, reason: str, records: int) -> None:
        self._metrics.write_errors.inc()
        self._metrics.dropped.inc(records)
        if self._failed_writes == 0:
            log.warning(
                "prediction log (%s): a write failed, its %d records are dropped, and records "
                "will be dropped until a write succeeds: %s",
                self._sink,
                records,
                reason,
            )
        self._failed_writes += 1
        self._dropped += records

    def succeeded(self, batch: Iterable[LogRecord]) -> None:
        for kind, written in Counter(record["kind"] for record in batch).items():
            self._metrics.records.labels(kind=kind).inc(written)
        if self._failed_writes:
            log.warning(
                "prediction log (%s): writing again after %d failed writes (%d records dropped)",
                self._sink,
                self._failed_writes,
                self._dropped,
            )
            self._failed_writes = 0
            self._dropped = 0
