"""Locust's CSV reports, read back: the aggregated figures and the history over time."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

AGGREGATED = "Aggregated"


#: How a shed request's failure reads in ``<prefix>_failures.csv`` (see the locustfile).
SHED_ERROR = "status 429"


@dataclass(frozen=True)
class ClientView:
    requests: int
    #: Every request not answered 200 with items, the shed ones included.
    failures: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    #: Of the failures: answered 429 (load shedding, retried after Retry-After).
    shed: int = 0

    @property
    def failure_ratio(self) -> float:
        """Requests that failed other than by load shedding, over all requests."""
        return (self.failures - self.shed) / self.requests if self.requests else 1.0

    @property
    def shed_ratio(self) -> float:
        return self.shed / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class HistoryPoint:
    elapsed_s: float
    users: int
    requests_per_s: float
    failures_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def _number(text: str) -> float | None:
    """Locust writes "N/A" where a percentile has no data yet."""
    try:
        return float(text)
    except ValueError:
        return None


def _percentile(text: str, answered: bool) -> float | None:
    """No HTTP answer takes 0 ms: a 0 is Locust's placeholder for an empty window."""
    value = _number(text)
    return value if answered and value else None


def client_view(prefix: Path) -> ClientView:
    """The aggregated row of ``<prefix>_stats.csv``."""
    with open(f"{prefix}_stats.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == AGGREGATED]
    if not rows:
        raise ValueError(f"{prefix}_stats.csv has no {AGGREGATED} row: did Locust run?")
    row = rows[0]
    return ClientView(
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
        requests_per_s=float(row["Requests/s"]),
        p50_ms=_number(row["50%"]) or 0.0,
        p95_ms=_number(row["95%"]) or 0.0,
        p99_ms=_number(row["99%"]) or 0.0,
        shed=_shed(Path(f"{prefix}_failures.csv")),
    )


def _shed(failures_csv: Path) -> int:
    """Occurrences of load-shedding failures in Locust's failures report (none without one)."""
    if not failures_csv.is_file():
        return 0
    with open(failures_csv, newline="") as handle:
        return sum(
            int(row["Occurrences"])
            for row in csv.DictReader(handle)
            if SHED_ERROR in row.get("Error", "")
        )


def history(prefix: Path) -> list[HistoryPoint]:
    """The aggregated rows of ``<prefix>_stats_history.csv`` (``--csv-full-history``)."""
    with open(f"{prefix}_stats_history.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] == AGGREGATED]
    if not rows:
        return []
    start = int(rows[0]["Timestamp"])
    points = []
    for row in rows:
        # Before the first answer Locust writes 0 for every percentile: no data, not 0 ms.
        answered = int(row["Total Request Count"]) > 0
        points.append(
            HistoryPoint(
                elapsed_s=float(int(row["Timestamp"]) - start),
                users=int(row["User Count"]),
                requests_per_s=_number(row["Requests/s"]) or 0.0,
                failures_per_s=_number(row["Failures/s"]) or 0.0,
                p50_ms=_percentile(row["50%"], answered),
                p95_ms=_percentile(row["95%"], answered),
                p99_ms=_percentile(row["99%"], answered),
            )
        )
    return points
