"""The Markdown summary of a load test and the gates that pass or fail it."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from loadtest.locust_results import ClientView
from loadtest.server_metrics import ServerView


@dataclass(frozen=True)
class Gates:
    """A run fails when its client-side p99, its failure ratio (load shedding aside) or its
    share of requests shed with 429 is above these."""

    p99_ms: float
    failure_ratio: float
    shed_ratio: float = 0.05


@dataclass(frozen=True)
class RunDescription:
    command: str
    target: str
    shape: str
    duration: str
    users: int
    spawn_rate: float
    candidates: str


@dataclass(frozen=True)
class GateResult:
    name: str
    limit: float
    measured: float

    @property
    def passed(self) -> bool:
        return self.measured <= self.limit


def check_gates(gates: Gates, client: ClientView) -> list[GateResult]:
    return [
        GateResult("p99_ms", gates.p99_ms, client.p99_ms),
        GateResult("failure_ratio", gates.failure_ratio, client.failure_ratio),
        GateResult("shed_ratio", gates.shed_ratio, client.shed_ratio),
    ]


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def summary_markdown(
    run: RunDescription, client: ClientView, server: ServerView, results: list[GateResult]
) -> str:
    verdict = "PASSED" if all(r.passed for r in results) else "FAILED"
    lines = [
        f"# Load test: {verdict}",
        "",
        f"Command: `{run.command}`",
        "",
        f"Target {run.target}; shape {run.shape} for {run.duration}, {run.users} users spawned "
        f"at {run.spawn_rate:g}/s; candidates {run.candidates}; machine: {machine()}.",
        "",
        "| /v1/rank | requests | failure ratio | shed ratio | req/s | p50 ms | p95 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| Locust (client) | {client.requests} | {client.failure_ratio:.4f} | "
        f"{client.shed_ratio:.4f} | "
        f"{client.requests_per_s:.1f} | {client.p50_ms:.1f} | {client.p95_ms:.1f} | "
        f"{client.p99_ms:.1f} |",
        f"| service /metrics | {server.requests} | "
        f"{_ratio(server.non_200 - server.shed, server.requests):.4f} | "
        f"{_ratio(server.shed, server.requests):.4f} | | "
        f"{_ms(server.quantiles_ms['p50'])} | {_ms(server.quantiles_ms['p95'])} | "
        f"{_ms(server.quantiles_ms['p99'])} |",
        "",
        "Server quantiles are estimated from `reaseq_request_duration_seconds` bucket deltas "
        "(linear within a bucket, as `histogram_quantile` does); client figures include the "
        "load generator's own queueing. Locust's figures cover both request names "
        "(with and without `explain`).",
        "",
        "Mean time per stage (service): "
        + (
            ", ".join(f"{stage} {ms:.2f} ms" for stage, ms in server.stage_mean_ms.items())
            or "none recorded"
        )
        + ".",
        "",
    ]
    if server.arms:
        lines += [
            "Answers per experiment arm (service): "
            + ", ".join(f"{arm} {count}" for arm, count in sorted(server.arms.items()))
            + ".",
            "",
        ]
    lines += [
        "| gate | limit | measured | result |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.name} | {r.limit:g} | {r.measured:.4g} | {'pass' if r.passed else 'FAIL'} |"
        for r in results
    ]
    lines += ["", "Files: `locust_stats.csv`, `locust_stats_history.csv`, `locust.html`, "
              "`latency.png`, `summary.json`.", ""]  # fmt: skip
    return "\n".join(lines)


def write_report(
    folder: Path,
    run: RunDescription,
    client: ClientView,
    server: ServerView,
    results: list[GateResult],
) -> Path:
    """``summary.md`` and ``summary.json`` in ``folder``; returns the Markdown path."""
    summary = folder / "summary.md"
    summary.write_text(summary_markdown(run, client, server, results))
    document = {
        "run": asdict(run),
        "machine": machine(),
        "client": asdict(client) | {"failure_ratio": client.failure_ratio},
        "server": asdict(server),
        "gates": [asdict(r) | {"passed": r.passed} for r in results],
        "passed": all(r.passed for r in results),
    }
    (folder / "summary.json").write_text(json.dumps(document, indent=2))
    return summary
