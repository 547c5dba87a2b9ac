"""The prediction log: every answer (while an experiment runs, or always) and every outcome a
caller reports, written without ever holding up an answer.

A record is queued by :meth:`PredictionLog.record` and written behind the request: JSON Lines
files (:mod:`.files`) or, with the Redis store, the Redis stream (:mod:`.stream`). The record
format is :mod:`service.experiments.records`. A full queue or a failed write drops records and
counts them (``reaseq_prediction_log_*`` metrics); it never fails a request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.experiments.prediction_log.base import (
    LogRecord,
    PredictionLog,
    PredictionLogUnavailable,
)
from service.experiments.prediction_log.files import open_file_log
from service.experiments.prediction_log.stream import open_stream_log
from service.observability.prediction_log_metrics import PredictionLogMetrics
from service.stores.config import EmbeddedStoreConfig, RedisStoreConfig

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = [
    "LogRecord",
    "PredictionLog",
    "PredictionLogUnavailable",
    "open_prediction_log",
    "should_log",
]


def should_log(settings: Settings, experiment_running: bool) -> bool:
    """Whether an answer goes to the prediction log (``REASEQ_PREDICTION_LOG``): always with
    ``always``, while an experiment runs with ``experiment``, never with ``off``."""
    mode = settings.prediction_log
    return mode == "always" or (mode == "experiment" and experiment_running)


def open_prediction_log(
    settings: Settings,
    store_config: EmbeddedStoreConfig | RedisStoreConfig,
    metrics: PredictionLogMetrics | None = None,
) -> PredictionLog | None:
    """The log the settings choose (None with ``REASEQ_PREDICTION_LOG=off``), counting on
    ``metrics`` (the service's: ``ServiceMetrics.prediction_log``). Call it on the event loop;
    close it after the last request.

    Raises :class:`PredictionLogUnavailable`, naming the setting, when the folder cannot be
    written or the Redis stream is asked for without the Redis store."""
    if settings.prediction_log == "off":
        return None
    metrics = metrics if metrics is not None else PredictionLogMetrics()
    sink = settings.prediction_log_sink
    if sink == "redis" and not isinstance(store_config, RedisStoreConfig):
        raise PredictionLogUnavailable(
            "REASEQ_PREDICTION_LOG_SINK=redis writes to the store's Redis: set "
            "REASEQ_STORE=redis, or choose file or auto"
        )
    if sink != "file" and isinstance(store_config, RedisStoreConfig):
        return open_stream_log(
            store_config, settings.prediction_stream_maxlen, settings.prediction_log_queue, metrics
        )
    folder = settings.prediction_log_dir
    try:
        return open_file_log(
            folder,
            settings.prediction_log_max_bytes,
            settings.prediction_log_max_files,
            settings.prediction_log_queue,
            metrics,
        )
    except OSError as error:
        raise PredictionLogUnavailable(
            f"REASEQ_PREDICTION_LOG_DIR={folder} cannot be written ({error}): set it to a "
            "folder this process can create and write, or REASEQ_PREDICTION_LOG=off"
        ) from error
