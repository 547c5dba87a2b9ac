"""The prediction log as a Redis stream, written by a background asyncio task.

Callers only queue a record; the task takes what is queued, encodes it in a worker thread and
sends one pipeline of ``XADD`` (approximately capped at ``maxlen`` entries) per batch, on a client
of its own so that it never competes with the store's requests for a connection. When Redis
cannot take a batch, the batch is dropped and counted, the task waits a moment and goes on with
the next one: the queue fills and drops meanwhile, and answers are served as before.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import suppress

from service import tasks
from service.experiments.prediction_log.base import (
    LINGER_S,
    LogRecord,
    RecordQueue,
    WriteFailures,
    encode_records,
    log,
)
from service.experiments.records import PREDICTION_STREAM, STREAM_FIELD
from service.observability.prediction_log_metrics import PredictionLogMetrics
from service.stores.config import RedisStoreConfig
from service.stores.redis import RedisClient, connect

#: Entries sent in one pipeline, at most.
BATCH_RECORDS = 256
WRITE_TIMEOUT_S = 2.0
RETRY_DELAY_S = 1.0
CLOSE_TIMEOUT_S = 5.0


class StreamLog:
    """A :class:`~service.experiments.prediction_log.base.PredictionLog` adding entries to
    :data:`~service.experiments.records.PREDICTION_STREAM`; open it on the event loop."""

    def __init__(
        self,
        client: RedisClient,
        maxlen: int,
        queue_size: int,
        metrics: PredictionLogMetrics,
        retry_delay_s: float = RETRY_DELAY_S,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        linger_s: float = LINGER_S,
    ) -> None:
        self._client = client
        self._linger_s = linger_s
        self._maxlen = maxlen
        self._queue = RecordQueue(queue_size, metrics)
        self._failures = WriteFailures("redis stream", metrics)
        self._retry_delay_s = retry_delay_s
        self._close_timeout_s = close_timeout_s
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._closed = False
        self._task = self._loop.create_task(self._run(), name="prediction-log-stream")

    def record(self, record: LogRecord) -> bool:
        if not self._queue.put(record):
            return False
        if threading.get_ident() != self._loop_thread:
            with suppress(RuntimeError):  # the loop is closed: the record stays queued
                self._loop.call_soon_threadsafe(self._wake.set)
        elif not self._wake.is_set():
            self._wake.set()
        return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.closed = True
        self._stop.set()
        self._wake.set()
        _, pending = await asyncio.wait({self._task}, timeout=self._close_timeout_s)
        if pending:
            await tasks.stop(self._task)
            lost = self._queue.drop_all()
            log.warning(
                "prediction log: the stream writer did not finish within %.1f s: %d queued "
                "records dropped",
                self._close_timeout_s,
                lost,
            )
        await self._client.aclose()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            batch = self._queue.take(BATCH_RECORDS)
            if batch:
                await self._write(batch)
            elif self._stop.is_set():
                return
            else:
                await self._wake.wait()
                await self._pause(self._linger_s)  # let more gather, unless closing

    async def _write(self, batch: list[LogRecord]) -> None:
        records, lines = await asyncio.to_thread(encode_records, batch, self._failures)
        if not lines:
            return
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                pipe = self._client.pipeline(transaction=False)
                for line in lines:
                    pipe.xadd(
                        PREDICTION_STREAM,
                        {STREAM_FIELD: line},
                        maxlen=self._maxlen,
                        approximate=True,
                    )
                await pipe.execute()
        except Exception as error:  # Redis down, slow or refusing: the task carries on
            self._failures.failed(f"{type(error).__name__}: {error}", len(records))
            await self._pause(self._retry_delay_s)
        else:
            self._failures.succeeded(records)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` unless closing (what is left is then written at once)."""
        with suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()


def open_stream_log(
    config: RedisStoreConfig, maxlen: int, queue_size: int, metrics: PredictionLogMetrics
) -> StreamLog:
    """The stream log on the Redis (server or cluster) of ``config``; connects lazily, so a
    Redis that is down at start-up only drops records until it is back."""
    return StreamLog(connect(config), maxlen, queue_size, metrics)
