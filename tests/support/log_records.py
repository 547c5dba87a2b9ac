"""Prediction-log records for the tests of the log's sinks."""

from __future__ import annotations

from service.experiments.prediction_log import LogRecord
from service.experiments.records import RECORD_FORMAT


def prediction(n: int) -> LogRecord:
    return {
        "kind": "prediction",
        "format": RECORD_FORMAT,
        "ts": 1_764_000_000.0 + n,
        "request_id": f"r{n}",
        "user_id": f"u{n % 7}",
        "experiment": "exp",
        "experiment_version": 1,
        "arm": "a" if n % 2 else "b",
        "shadow": False,
        "bundle_version": "test-1",
        "items": ["i1", "i2", "i3"],
        "scores": [0.9, 0.5, 0.1],
        "candidates": 3,
        "degraded": [],
    }


def outcome(n: int) -> LogRecord:
    return {
        "kind": "outcome",
        "format": RECORD_FORMAT,
        "ts": 1_764_000_100.0 + n,
        "request_id": f"r{n}",
        "item_id": "i1",
        "outcome": "click",
    }


def mixed(count: int) -> list[LogRecord]:
    return [prediction(n) if n % 3 else outcome(n) for n in range(count)]
