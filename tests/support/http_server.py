"""``python -m service`` as a real process on a free loopback port, for tests over real HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtest.service_process import ServiceDidNotStart, serving_process
from tests.support.ports import free_port

START_DEADLINE_S = 60.0


@dataclass(frozen=True)
class ServiceProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def running_service(
    bundle_root: Path, users_snapshot: Path, log: Path, **settings: str
) -> Iterator[ServiceProcess]:
    """The service with ``REASEQ_<NAME>`` set from ``settings``; its output goes to ``log``."""
    port = free_port()
    env = {
        "REASEQ_PORT": str(port),
        "REASEQ_BUNDLE_ROOT": str(bundle_root),
        "REASEQ_EMBEDDED_USERS_PATH": str(users_snapshot),
        "REASEQ_LOG_LEVEL": "warning",
        "REASEQ_PREDICTION_LOG_DIR": str(log.parent / "predictions"),
    }
    env |= {f"REASEQ_{name.upper()}": value for name, value in settings.items()}
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "service"]
    try:
        with serving_process(command, env, log, url, START_DEADLINE_S, 10) as process:
            yield ServiceProcess(url=url, process=process, log=log)
    except ServiceDidNotStart as error:
        pytest.fail(f"{error}:\n{log.read_text()}")
