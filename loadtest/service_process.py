"""The service under test, started as its own process when no target URL is given."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from model_export.local_service import ServiceDidNotStart, free_port, stop_process

__all__ = ["ServiceDidNotStart", "free_port", "local_service", "serving_process", "wait_ready"]


def wait_ready(url: str, process: subprocess.Popen[bytes] | None, deadline_s: float) -> None:
    """Until ``/readyz`` answers 200; fails early when the process exits."""
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        if process is not None and process.poll() is not None:
            raise ServiceDidNotStart(f"the service exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ServiceDidNotStart(f"{url} was not ready within {deadline_s:.0f} s")


@contextmanager
def serving_process(
    command: Sequence[str],
    env: Mapping[str, str],
    log_path: Path,
    url: str,
    deadline_s: float = 120,
    stop_timeout_s: float = 15,
    niceness: int = 0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command``, a server that will listen at ``url``, with ``env`` over this process's
    environment and its output in ``log_path``; yield it once ``url/readyz`` answers 200, then
    stop it (SIGTERM, SIGKILL after ``stop_timeout_s``). Raises :class:`ServiceDidNotStart`
    when it exits first or is not ready within ``deadline_s``. A positive ``niceness`` lowers
    its CPU priority (and its children's) below this process's."""
    prefix = ["nice", "-n", str(niceness)] if niceness else []
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*prefix, *command], env=os.environ | dict(env), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_ready(url, process, deadline_s)
        yield process
    finally:
        stop_process(process, stop_timeout_s)


@contextmanager
def local_service(
    bundle_root: Path,
    users_path: Path | None,
    log_path: Path,
    deadline_s: float = 120,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """``python -m service`` on a free loopback port (``extra_env`` over its settings), its
    output in ``log_path``; yields the URL."""
    port = free_port()
    env = {
        "REASEQ_HOST": "127.0.0.1",
        "REASEQ_PORT": str(port),
        "REASEQ_BUNDLE_ROOT": str(bundle_root),
        "REASEQ_STORE": "embedded",
    }
    if users_path is not None:
        env["REASEQ_EMBEDDED_USERS_PATH"] = str(users_path)
    env |= extra_env or {}
    url = f"http://127.0.0.1:{port}"
    with serving_process([sys.executable, "-m", "service"], env, log_path, url, deadline_s):
        yield url
