"""``python -m service`` serves real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from service.app import worker_count_reason
from service.settings import Settings
from service.threads import MAX_DEFAULT_WORKERS, default_workers
from tests.support.http_server import service_env
from tests.support.ports import free_port


def test_python_m_service_serves(bundle_root: Path, users_snapshot: Path) -> None:
    port = free_port()
    env = (
        os.environ
        | service_env(port, bundle_root, users_snapshot)
        | {"REASEQ_LOG_LEVEL": "warning"}
    )
    process = subprocess.Popen([sys.executable, "-m", "service"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        response = httpx.post(f"{base}/v1/rank", json={"user_id": "u1", "candidates": ["i1", "i3"]})
        assert response.status_code == 200
        assert [i["item_id"] for i in response.json()["items"]] == ["i3", "i1"]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"REASEQ_GRAPH_MODE": "bogus"},
            ["REASEQ_GRAPH_MODE='bogus' is not valid: Input should be"],
        ),
        (
            {"REASEQ_REDIS_URL": "localhost:6379"},
            ["REASEQ_REDIS_URL='localhost:6379' is not valid: not a Redis URL: expected redis://"],
        ),
        (
            {"REASEQ_PORT": "eighty", "REASEQ_LOG_FORMAT": "xml"},
            ["REASEQ_PORT='eighty' is not valid", "REASEQ_LOG_FORMAT='xml' is not valid"],
        ),
        (
            {"REASEQ_DEVICE": "cuda", "REASEQ_ATTENTION_BACKEND": "numpy"},
            ["REASEQ_ATTENTION_BACKEND=numpy runs on the host"],
        ),
    ],
    ids=["choice", "redis-url", "two-variables", "across-variables"],
)
def test_a_bad_setting_is_one_line_per_variable_and_exit_2(
    tmp_path: Path, variables: dict[str, str], expected: list[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REASEQ_")} | variables
    done = subprocess.run(
        [sys.executable, "-m", "service"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 2, lines
    assert "Traceback" not in done.stderr
    assert len(lines) == len(expected), lines
    for line, wanted in zip(lines, expected, strict=True):
        assert line.startswith("error: ") and wanted in line, lines


def test_workers_default_to_one_per_usable_core_but_one_on_the_device_path(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("service.settings.usable_cores", lambda: 4)
    # The admin endpoints on, on either store: the workers share what they change.
    for store in ("embedded", "redis"):
        settings = make_settings(store=store)
        assert settings.workers is None
        assert settings.worker_processes == 4
        assert "one per usable core" in worker_count_reason(settings)
    device = make_settings(attention_backend="torch")
    assert device.worker_processes == 1
    assert "device path" in worker_count_reason(device)
    # Set, the count is what was asked for, whatever else is on.
    assert make_settings(workers=3, attention_backend="torch").worker_processes == 3
    assert worker_count_reason(make_settings(workers=3)) == "REASEQ_WORKERS"
    monkeypatch.setattr("service.settings.usable_cores", lambda: 32)
    assert make_settings().worker_processes == MAX_DEFAULT_WORKERS


def test_default_workers_follow_the_cores_up_to_a_bound() -> None:
    assert [default_workers(cores) for cores in (1, 2, 8, 9, 64)] == [1, 2, 8, 8, 8]
    assert default_workers(16, single=True) == 1
