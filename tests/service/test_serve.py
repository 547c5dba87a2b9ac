"""``python -m service`` serves real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import free_port


def test_python_m_service_serves(bundle_root: Path, users_snapshot: Path) -> None:
    port = free_port()
    env = os.environ | {
        "REASEQ_PORT": str(port),
        "REASEQ_BUNDLE_ROOT": str(bundle_root),
        "REASEQ_EMBEDDED_USERS_PATH": str(users_snapshot),
        "REASEQ_LOG_LEVEL": "warning",
    }
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
