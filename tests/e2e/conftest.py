"""End-to-end fixtures: a demo bundle built by the real ``reaseq`` command, and the real server
process started on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REASEQ = [sys.executable, "-m", "cli.main"]


@dataclass(frozen=True)
class DemoBuild:
    bundles: Path
    var: Path

    @property
    def version(self) -> str:
        return (self.bundles / "CURRENT").read_text().strip()


def run_reaseq(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run a ``reaseq`` subcommand; fail the test with its output when it fails."""
    done = subprocess.run(
        [*REASEQ, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        pytest.fail(f"reaseq {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done.stdout


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> DemoBuild:
    """``reaseq demo`` on the small preset (enough items for 500 candidates), one epoch."""
    root = tmp_path_factory.mktemp("demo")
    build = DemoBuild(bundles=root / "bundles", var=root / "var")
    run_reaseq(
        "demo", "--size", "small", "--epochs", "1",
        "--bundles", str(build.bundles), "--out", str(build.var),
    )  # fmt: skip
    return build


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningService:
    url: str
    process: subprocess.Popen[str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def _wait_ready(service: RunningService, deadline_s: float = 60) -> None:
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        if service.process.poll() is not None:
            output = service.process.stdout.read() if service.process.stdout else ""
            pytest.fail(f"the service exited with {service.process.returncode}:\n{output[-4000:]}")
        try:
            if httpx.get(f"{service.url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the service at {service.url} was not ready within {deadline_s} s")


@pytest.fixture
def start_service() -> Iterator[Callable[[dict[str, str]], RunningService]]:
    """Start ``reaseq serve`` as a process with the given REASEQ_* environment; stop it after."""
    started: list[RunningService] = []

    def start(env: dict[str, str]) -> RunningService:
        port = _free_port()
        process = subprocess.Popen(
            [*REASEQ, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        service = RunningService(url=f"http://127.0.0.1:{port}", process=process)
        started.append(service)
        _wait_ready(service)
        return service

    yield start
    for service in started:
        service.process.terminate()
        try:
            service.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            service.process.kill()
