"""The prediction log's metrics: what it wrote, what it lost and why, and how much waits.

They live on the service's registry (:class:`service.observability.metrics.ServiceMetrics`
creates them); a log opened without one (a tool, a test) counts on a registry of its own.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

#: The ``kind`` of each record (``service.experiments.records``), created at zero.
RECORD_KINDS: Final = ("prediction", "outcome")


class PredictionLogMetrics:
    """Counters and the queue gauge of the prediction log, all workers' summed."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.records = Counter(
            "reaseq_prediction_log_records_total",
            "Records the prediction log wrote to its sink, by kind (prediction, outcome).",
            ["kind"],
            registry=registry,
        )
        self.dropped = Counter(
            "reaseq_prediction_log_dropped_total",
            "Records the prediction log lost: its queue was full (or it was closed), or the "
            "write that held them failed.",
            registry=registry,
        )
        self.write_errors = Counter(
            "reaseq_prediction_log_write_errors_total",
            "Batches the prediction log failed to write (a file error, Redis unreachable); "
            "their records count as dropped.",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "reaseq_prediction_log_queue_depth",
            "Records waiting to be written, summed over live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        for kind in RECORD_KINDS:
            self.records.labels(kind=kind)
