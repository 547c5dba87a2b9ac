"""Latency and throughput over the run, as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and servers have no display

import matplotlib.pyplot as plt

from loadtest.locust_results import HistoryPoint


def plot_history(points: list[HistoryPoint], path: Path, title: str) -> Path:
    """Two panels sharing the time axis: p50/p95/p99 (ms) above, requests/s and users below."""
    elapsed = [p.elapsed_s for p in points]
    figure, (latency, throughput) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    for label, values in (
        ("p50", [p.p50_ms for p in points]),
        ("p95", [p.p95_ms for p in points]),
        ("p99", [p.p99_ms for p in points]),
    ):
        latency.plot(elapsed, [float("nan") if v is None else v for v in values], label=label)
    latency.set_ylabel("latency (ms, client side)")
    latency.legend(loc="upper left")
    latency.grid(alpha=0.3)
    throughput.plot(elapsed, [p.requests_per_s for p in points], label="requests/s")
    throughput.plot(elapsed, [p.failures_per_s for p in points], label="failures/s")
    throughput.set_ylabel("per second")
    throughput.set_xlabel("elapsed (s)")
    throughput.grid(alpha=0.3)
    users = throughput.twinx()
    users.step(elapsed, [p.users for p in points], color="grey", alpha=0.5, where="post")
    users.set_ylabel("simulated users")
    throughput.legend(loc="upper left")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
