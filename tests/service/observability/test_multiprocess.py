"""Two uvicorn workers share their metrics through PROMETHEUS_MULTIPROC_DIR: whichever answers
the scrape reports the sum, and a killed worker's live gauges stop counting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtest.service_process import wait_ready
from service.observability.multiprocess import worker_pids
from tests.support.exposition import names, samples, value
from tests.support.http_server import service_env
from tests.support.ports import free_port
from tests.support.workers import RANK_200, started_workers, worker_rank_answers
from tests.support.workers import two_workers as serving_two_workers

BODY = {"user_id": "u1", "candidates": ["i1", "i3"]}


@pytest.fixture
def two_workers(
    bundle_root: Path, users_snapshot: Path, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    with serving_two_workers(bundle_root, users_snapshot, tmp_path) as served:
        yield served


def _rank_on_new_connections(url: str, count: int) -> None:
    for _ in range(count):
        # A fresh connection each time, so the kernel may hand it to either worker.
        response = httpx.post(f"{url}/v1/rank", json=BODY, headers={"Connection": "close"})
        assert response.status_code == 200


def test_counts_add_up_across_two_workers(two_workers: tuple[str, Path], tmp_path: Path) -> None:
    url, metrics_dir = two_workers
    workers = sorted(started_workers(metrics_dir))
    sent = 0
    per_worker = dict.fromkeys(workers, 0.0)
    while sent < 400 and min(per_worker.values()) == 0:
        _rank_on_new_connections(url, 20)
        sent += 20
        per_worker = {pid: worker_rank_answers(metrics_dir, pid, tmp_path) for pid in workers}
    assert min(per_worker.values()) > 0, f"one worker got no request in {sent}: {per_worker}"

    text = httpx.get(f"{url}/metrics").text
    assert value(text, "reaseq_requests_total", **RANK_200) == sent == sum(per_worker.values())
    assert value(text, "reaseq_stage_duration_seconds_count", stage="scorer") == sent
    bundle_series = [k for k in samples(text) if k[0] == "reaseq_bundle_info"]
    assert bundle_series == [("reaseq_bundle_info", frozenset({("version", "test-1")}))]
    assert value(text, "reaseq_bundle_info", version="test-1") == 1
    assert value(text, "reaseq_ready") == 1
    assert value(text, "reaseq_requests_in_flight") == 1  # only the scrape itself
    # Each live worker's own process metrics, whichever worker answered the scrape.
    for pid in workers:
        assert value(text, "process_resident_memory_bytes", pid=str(pid)) > 0, pid
        assert value(text, "process_cpu_seconds_total", pid=str(pid)) > 0, pid
    assert not [n for n in names(text) if n.endswith("_created")]

    # A worker killed outright: its live gauges go at the next scrape, its counts stay.
    killed = workers[0]
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        try:
            text = httpx.get(f"{url}/metrics", timeout=5).text
            if killed not in worker_pids(metrics_dir):
                break
        except httpx.HTTPError:
            pass  # the connection went to the dying worker
        assert time.monotonic() < deadline, "the killed worker's gauges were never removed"
        time.sleep(0.2)
    assert value(text, "reaseq_requests_total", **RANK_200) == sent
    assert value(text, "reaseq_requests_in_flight") == 1


def test_workers_share_a_private_metrics_folder_when_none_is_named(
    bundle_root: Path, users_snapshot: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    port = free_port()
    unset = ("PROMETHEUS_MULTIPROC_DIR", "REASEQ_WORKERS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= service_env(port, bundle_root, users_snapshot) | {
        "REASEQ_ACCESS_LOG": "false",
        "TMPDIR": str(scratch),
    }
    log_path = tmp_path / "service.log"
    command = [sys.executable, "-m", "cli.main", "serve", "--workers", "2"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while (
                len(folders := list(scratch.glob("reaseq-metrics-*"))) != 1
                or len(started_workers(folders[0])) < 2
            ):
                assert process.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "two workers did not start within 60 s"
                time.sleep(0.2)
            wait_ready(url, None, deadline_s=60)
            _rank_on_new_connections(url, 40)
            text = httpx.get(f"{url}/metrics").text
            # Whichever worker answered, it counts every request, its peer's too.
            assert value(text, "reaseq_requests_total", **RANK_200) == 40
            assert "starting 2 worker processes" in log_path.read_text()
        finally:
            process.terminate()
            process.wait(timeout=20)
    assert process.returncode == 0, log_path.read_text()[-3000:]
    assert not list(scratch.glob("reaseq-metrics-*")), "the private folder outlived the service"
