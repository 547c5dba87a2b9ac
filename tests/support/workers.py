"""A service of two uvicorn worker processes, and what each worker answered, read from its own
metric file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from loadtest.service_process import wait_ready
from service.observability.multiprocess import worker_pids
from tests.support.exposition import value
from tests.support.http_server import service_env
from tests.support.ports import free_port

RANK_200 = {"route": "/v1/rank", "status": "200"}


def started_workers(metrics_dir: Path) -> set[int]:
    """Workers that created their metrics (each has live-gauge files)."""
    return worker_pids(metrics_dir) if metrics_dir.is_dir() else set()


@contextmanager
def two_workers(
    bundle_root: Path, users_snapshot: Path, folder: Path, **env: str
) -> Iterator[tuple[str, Path]]:
    """``python -m service`` with two workers, both started and the service ready: its URL and
    metrics folder. ``env`` adds to its environment; its log is ``folder/service.log``."""
    metrics_dir = folder / "metrics"
    port = free_port()
    environment = (
        os.environ
        | service_env(port, bundle_root, users_snapshot)
        | {
            "REASEQ_WORKERS": "2",
            "REASEQ_ACCESS_LOG": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        | env
    )
    log_path = folder / "service.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "service"]
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            while len(started_workers(metrics_dir)) < 2:
                assert process.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "two workers did not start within 60 s"
                time.sleep(0.2)
            wait_ready(url, None, deadline_s=60)
            yield url, metrics_dir
        finally:
            process.terminate()
            process.wait(timeout=20)


def worker_rank_answers(metrics_dir: Path, pid: int, scratch: Path) -> float:
    """One worker's own count of 200s on /v1/rank, read from its file alone."""
    alone = scratch / str(pid)
    alone.mkdir(exist_ok=True)
    shutil.copy(metrics_dir / f"counter_{pid}.db", alone / f"counter_{pid}.db")
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(alone))
    return value(generate_latest(registry).decode(), "reaseq_requests_total", **RANK_200)
