"""The connection guard: the cap, who is closed at it, and the open-file limit it fits."""

from __future__ import annotations

import logging
import resource

import pytest

from service.http import connections
from service.http.connections import ConnectionGuard, fit_open_files
from service.observability.metrics import ServiceMetrics


class FakeConnection:
    def __init__(self) -> None:
        self.dropped = False

    def drop(self) -> None:
        self.dropped = True


def _guard(max_open: int) -> tuple[ConnectionGuard, ServiceMetrics]:
    metrics = ServiceMetrics()
    guard = ConnectionGuard(
        max_open, 1.0, 16_384, metrics.connections_open, metrics.connections_dropped
    )
    return guard, metrics


def _dropped(metrics: ServiceMetrics, reason: str) -> float | None:
    return metrics.registry.get_sample_value(
        "reaseq_http_connections_dropped_total", {"reason": reason}
    )


def test_at_the_cap_a_new_connection_closes_the_longest_waiting_one() -> None:
    guard, metrics = _guard(max_open=3)
    first, second, third, fourth = (FakeConnection() for _ in range(4))
    for connection in (first, second, third):
        assert guard.opened(connection)
    guard.busy(first)  # serving a request: never closed for another
    assert guard.opened(fourth)
    assert (first.dropped, second.dropped, third.dropped) == (False, True, False)
    assert guard.open == 3
    assert metrics.registry.get_sample_value("reaseq_http_connections_open") == 3
    assert _dropped(metrics, "evicted") == 1
    guard.waiting(first)  # answered: now the most recent to wait
    fifth = FakeConnection()
    assert guard.opened(fifth)
    assert third.dropped and not first.dropped


def test_at_the_cap_with_every_connection_busy_a_new_one_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard, metrics = _guard(max_open=2)
    busy = [FakeConnection(), FakeConnection()]
    for connection in busy:
        guard.opened(connection)
        guard.busy(connection)
    with caplog.at_level(logging.WARNING, logger=connections.__name__):
        assert not guard.opened(FakeConnection())
    assert guard.open == 2 and not any(c.dropped for c in busy)
    assert _dropped(metrics, "refused") == 1
    assert "closed HTTP connections: 1 refused; 2 open, at most 2" in caplog.text
    guard.closed(busy[0])
    guard.closed(busy[0])  # a second report of the same close counts once
    assert metrics.registry.get_sample_value("reaseq_http_connections_open") == 1
    assert guard.opened(FakeConnection())


def test_the_open_file_limit_is_raised_or_the_cap_lowered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = {"soft": 1024, "hard": 4096}

    def getrlimit(_: int) -> tuple[int, int]:
        return limits["soft"], limits["hard"]

    def setrlimit(_: int, values: tuple[int, int]) -> None:
        limits["soft"] = values[0]

    monkeypatch.setattr(resource, "getrlimit", getrlimit)
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    assert fit_open_files(2048) == 2048
    assert limits["soft"] == 2048 + connections.OPEN_FILES_RESERVE
    limits.update(soft=1024, hard=1024)
    assert fit_open_files(2048) == 1024 - connections.OPEN_FILES_RESERVE
