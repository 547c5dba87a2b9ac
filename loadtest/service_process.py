"""The service under test, started as its own process when no target URL is given."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


class ServiceDidNotStart(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        time.sleep(0.2)
    raise ServiceDidNotStart(f"{url} was not ready within {deadline_s:.0f} s")


@contextmanager
def local_service(
    bundle_root: Path, users_path: Path | None, log_path: Path, deadline_s: float = 120
) -> Iterator[str]:
    """``python -m service`` on a free loopback port, its output in ``log_path``; yields the URL."""
    port = free_port()
    env = os.environ | {
        "REASEQ_HOST": "127.0.0.1",
        "REASEQ_PORT": str(port),
        "REASEQ_BUNDLE_ROOT": str(bundle_root),
        "REASEQ_STORE": "embedded",
    }
    if users_path is not None:
        env["REASEQ_EMBEDDED_USERS_PATH"] = str(users_path)
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_ready(url, process, deadline_s)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
