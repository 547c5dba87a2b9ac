"""The ``reaseq`` command and the service it starts, as the end-to-end and load tests run them:
a demo build, a command run as a process, a served process's address."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

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


def embedded_env(build: DemoBuild) -> dict[str, str]:
    """The environment that serves a demo build from the embedded store."""
    return {
        "REASEQ_BUNDLE_ROOT": str(build.bundles),
        "REASEQ_EMBEDDED_USERS_PATH": str(build.var / "users.npz"),
        "REASEQ_STORE": "embedded",
    }


@dataclass
class RunningService:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)
