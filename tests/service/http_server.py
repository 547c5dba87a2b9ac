"""``python -m service`` as a real process on a free loopback port, for tests over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from loadtest.service_process import free_port

START_DEADLINE_S = 60.0


@dataclass(frozen=True)
class ServiceProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def _wait_ready(service: ServiceProcess) -> None:
    stop = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < stop:
        if service.process.poll() is not None:
            pytest.fail(
                f"the service exited {service.process.returncode}:\n{service.log.read_text()}"
            )
        try:
            if httpx.get(f"{service.url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(
        f"the service was not ready within {START_DEADLINE_S} s:\n{service.log.read_text()}"
    )


@contextmanager
def running_service(
    bundle_root: Path, users_snapshot: Path, log: Path, **settings: str
) -> Iterator[ServiceProcess]:
    """The service with ``REASEQ_<NAME>`` set from ``settings``; its output goes to ``log``."""
    port = free_port()
    env = os.environ | {
        "REASEQ_PORT": str(port),
        "REASEQ_BUNDLE_ROOT": str(bundle_root),
        "REASEQ_EMBEDDED_USERS_PATH": str(users_snapshot),
        "REASEQ_LOG_LEVEL": "warning",
    }
    env |= {f"REASEQ_{name.upper()}": value for name, value in settings.items()}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    service = ServiceProcess(url=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_ready(service)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
