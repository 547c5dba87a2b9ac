"""``reaseq scale``: its mistakes are one line, exit 2, no traceback (a wrong path, a missing Ray);
importing the command (or serving) loads no Ray."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[3]
#: ``reaseq`` in a process where ``import ray`` fails, as where the scale extra is not installed.
WITHOUT_RAY = "import sys; sys.modules['ray'] = None; from cli.main import app; app()"


def _reaseq(*args: str, code: str | None = None) -> tuple[int, list[str]]:
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "cli.main"]
    if not code:
        command += args
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REASEQ_", "RAY_"))}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=REPOSITORY, env=env
    )
    return done.returncode, (done.stdout + done.stderr).strip().splitlines()


def _nearline(tmp_path: Path) -> list[str]:
    return [
        "scale", "nearline", "--data", str(tmp_path / "missing"),
        "--checkpoint", str(tmp_path / "gbr"), "--bundles", str(tmp_path / "bundles"),
        "--store", "redis", "--redis-url", "redis://127.0.0.1:1/0",
        "--state", str(tmp_path / "state.npz"),
    ]  # fmt: skip


def test_a_missing_dataset_is_one_line(tmp_path: Path) -> None:
    code, lines = _reaseq(*_nearline(tmp_path))
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "missing" in lines[0]


def test_without_ray_the_command_says_which_extra_to_install(tmp_path: Path) -> None:
    code, lines = _reaseq(*_nearline(tmp_path), code=WITHOUT_RAY)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "pip install -e '.[scale]'" in lines[0]


def test_the_command_and_the_serving_path_load_no_ray() -> None:
    code = (
        "import sys\n"
        "import cli.main, cli.scale, service.app, service.stores.redis\n"
        "service.app.create_app(service.app.Settings())\n"
        "loaded = {'ray', 'torch', 'offline.scale'} & set(sys.modules)\n"
        "assert not loaded, f'imported {loaded}'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPOSITORY
    )
    assert done.returncode == 0, done.stderr[-2000:]
