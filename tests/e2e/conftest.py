"""End-to-end fixtures: a demo bundle built by the real ``reaseq`` command, and the real server
process started on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from loadtest.service_process import ServiceDidNotStart, free_port, serving_process
from service.contracts.bundle_root import read_current

REASEQ = [sys.executable, "-m", "cli.main"]


@dataclass(frozen=True)
class DemoBuild:
    bundles: Path
    var: Path

    @property
    def version(self) -> str:
        return read_current(self.bundles)


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


@dataclass
class RunningService:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], RunningService]]:
    """Start ``reaseq serve`` as a process with the given REASEQ_* environment; stop it after."""
    with ExitStack() as running:

        def start(env: dict[str, str]) -> RunningService:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            log = tmp_path / f"service-{port}.log"
            command = [*REASEQ, "serve", "--host", "127.0.0.1", "--port", str(port)]
            try:
                process = running.enter_context(serving_process(command, env, log, url, 60, 10))
            except ServiceDidNotStart as error:
                pytest.fail(f"{error}:\n{log.read_text()[-4000:]}")
            return RunningService(url=url, process=process, log=log)

        yield start
