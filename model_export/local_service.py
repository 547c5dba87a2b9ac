"""The ranking service as a local process for the offline side's runs, and a JSON client for it.

``python -m service`` on a free loopback port with ``REASEQ_*`` settings (only those given: the
caller's own ``REASEQ_*`` variables are not passed on, so a run does not depend on the shell it
starts from), its output in a log file; ready once ``/readyz`` answers 200, stopped with
SIGTERM (so it flushes its prediction log) and SIGKILL if it lingers. The client keeps one
HTTP/1.1 connection (standard library only: the offline install has no HTTP client of its own).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PREFIX = "REASEQ_"
START_DEADLINE_S = 120.0
STOP_TIMEOUT_S = 30.0


class ServiceDidNotStart(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class JsonClient:
    """POST and GET JSON on one keep-alive connection to ``127.0.0.1:port``."""

    def __init__(self, port: int, timeout_s: float = 30.0) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)

    def request(self, method: str, path: str, body: object = None) -> tuple[int, bytes]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if payload is not None else {}
        try:
            self._connection.request(method, path, payload, headers)
            response = self._connection.getresponse()
        except (ConnectionError, http.client.HTTPException):
            self._connection.close()  # reconnect once: the server may have closed an idle one
            self._connection.request(method, path, payload, headers)
            response = self._connection.getresponse()
        return response.status, response.read()

    def post(self, path: str, body: object) -> Any:
        """The JSON answer of a 2xx; raises ``RuntimeError`` with the answer otherwise."""
        status, answer = self.request("POST", path, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"POST {path} answered {status}: {answer[:500]!r}")
        return json.loads(answer)

    def close(self) -> None:
        self._connection.close()


def _wait_ready(port: int, process: subprocess.Popen[bytes], deadline_s: float) -> None:
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise ServiceDidNotStart(f"the service exited with code {process.returncode}")
        client = JsonClient(port, timeout_s=1.0)
        try:
            if client.request("GET", "/readyz")[0] == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            client.close()
        time.sleep(0.2)
    raise ServiceDidNotStart(f"the service was not ready within {deadline_s:.0f} s")


@contextmanager
def local_service(
    settings: Mapping[str, str], log_path: Path, deadline_s: float = START_DEADLINE_S
) -> Iterator[int]:
    """The service with ``REASEQ_<NAME>`` from ``settings`` (names without the prefix) and no
    other ``REASEQ_*`` variable; yields its port once ready. Raises :class:`ServiceDidNotStart`
    with the end of its log."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(PREFIX)}
    env |= {f"{PREFIX}{name.upper()}": value for name, value in settings.items()}
    env |= {f"{PREFIX}HOST": "127.0.0.1", f"{PREFIX}PORT": str(port)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        try:
            _wait_ready(port, process, deadline_s)
        except ServiceDidNotStart as error:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ServiceDidNotStart(f"{error}; its log ends:\n{tail}") from None
        yield port
    finally:
        stop_process(process, STOP_TIMEOUT_S)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """SIGTERM, and SIGKILL if it has not exited within ``timeout_s``."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
