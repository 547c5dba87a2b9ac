"""``python -m service`` as a real process on a free loopback port, for tests over real HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtest.service_process import ServiceDidNotStart, serving_process
from tests.support.ports import free_port

START_DEADLINE_S = 60.0
#: A rank request of some weight (200 candidates), as the tests over real HTTP send it.
RANK = {"user_id": "u1", "candidates": [f"i{n}" for n in range(200)], "top_k": 10}


@dataclass(frozen=True)
class ServiceProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, for tests that speak raw HTTP over a socket."""
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)


def service_env(port: int, bundle_root: Path, users_snapshot: Path) -> dict[str, str]:
    """What every service process of the tests is told: its port, bundles and users."""
    return {
        "REASEQ_PORT": str(port),
        "REASEQ_BUNDLE_ROOT": str(bundle_root),
        "REASEQ_EMBEDDED_USERS_PATH": str(users_snapshot),
    }


@contextmanager
def running_service(
    bundle_root: Path, users_snapshot: Path, log: Path, **settings: str
) -> Iterator[ServiceProcess]:
    """The service with ``REASEQ_<NAME>`` set from ``settings``; its output goes to ``log``.
    One worker unless ``workers`` says otherwise: limits and caps are per worker, and which
    worker answers a request is not the test's to choose."""
    port = free_port()
    env = service_env(port, bundle_root, users_snapshot) | {
        "REASEQ_LOG_LEVEL": "warning",
        "REASEQ_PREDICTION_LOG_DIR": str(log.parent / "predictions"),
        "REASEQ_WORKERS": "1",
    }
    env |= {f"REASEQ_{name.upper()}": value for name, value in settings.items()}
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "service"]
    try:
        with serving_process(command, env, log, url, START_DEADLINE_S, 10) as process:
            yield ServiceProcess(url=url, process=process, log=log)
    except ServiceDidNotStart as error:
        pytest.fail(f"{error}:\n{log.read_text()}")


def module_service(folder: str, **settings: str) -> Callable[..., Iterator[ServiceProcess]]:
    """A module-scoped fixture: :func:`running_service` with ``settings``, logging into a new
    temporary ``folder``."""

    @pytest.fixture(scope="module")
    def service(
        tmp_path_factory: pytest.TempPathFactory, bundle_root: Path, users_snapshot: Path
    ) -> Iterator[ServiceProcess]:
        log = tmp_path_factory.mktemp(folder) / "service.log"
        with running_service(bundle_root, users_snapshot, log, **settings) as running:
            yield running

    return service
