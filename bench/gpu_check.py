"""``make gpu-check``: what only a GPU can check, in one command and under 8 minutes.

    python -m bench.gpu_check              # on a machine with a CUDA GPU; writes docs/
    python -m bench.gpu_check --dry-run    # its CPU-safe parts at tiny sizes, under --work

It installs nothing (the machine needs no package registry: the virtual environment must hold
the ``kernels`` and ``dev`` extras and a CUDA build of PyTorch; ``onnxruntime-gpu`` is optional)
and runs, each step a subprocess under its own time limit so that one that hangs cannot take the
others' time:

1. **environment**: PyTorch sees a CUDA GPU; Triton, onnxruntime (and which providers) and pytest
   are there.
2. **parity on CUDA**: the device-path tests (``tests/service/device``: the device runner scores
   mixed batches like the CPU service, with onnxruntime's CUDA provider where installed and
   PyTorch's graphs otherwise) and the kernel parity tests, Triton compiled for the GPU.
3. **kernel benchmark**, the standard workloads' shapes: ``docs/KERNELS.md``, ``docs/kernels.json``.
4. **serving benchmark** of the device path in process at W1 and W2:
   ``docs/DEVICE_SERVING.md``, ``docs/device_serving.json``.

``--dry-run`` reports the environment without asking for a GPU, selects the ``gpu`` tests (they
skip), and runs both benchmarks at tiny sizes on the CPU, Triton in its interpreter, writing to
``--work``: the test suite runs it so the command is ready the day a GPU is there.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

#: The whole check's budget, and each step's share of it (seconds).
BUDGET_S = 480
LIMITS_S = {"parity": 150, "kernels": 140, "serving": 170}
PARITY_TESTS = ["tests/service/device", "tests/kernels/test_target_attention.py"]


@dataclass(frozen=True)
class Step:
    name: str
    command: list[str]
    env: dict[str, str]
    limit_s: float


@dataclass(frozen=True)
class Outcome:
    name: str
    ok: bool
    seconds: float
    detail: str


def environment(dry_run: bool) -> dict[str, object]:
    """What is installed and which GPU PyTorch sees; raises ``RuntimeError`` naming what is
    missing for a real run."""
    found: dict[str, object] = {"python": sys.version.split()[0]}
    missing = []
    for name in ("torch", "triton", "onnxruntime", "pytest"):
        try:
            found[name] = getattr(importlib.import_module(name), "__version__", "?")
        except ImportError:
            missing.append(name)
    if "onnxruntime" in found:
        import onnxruntime

        found["onnxruntime_providers"] = onnxruntime.get_available_providers()
    if "torch" in found:
        import torch

        found["cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            found["gpu"] = torch.cuda.get_device_name(0)
            found["torch_cuda"] = torch.version.cuda
    if missing:
        raise RuntimeError(f"not installed: {missing} (the kernels and dev extras)")
    if not dry_run and not found.get("cuda"):
        raise RuntimeError("PyTorch sees no CUDA GPU: run with --dry-run on a machine without")
    return found


def steps(python: str, out: Path, work: Path, dry_run: bool) -> list[Step]:
    base = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PARITY_TESTS]
    kernels = [python, "-m", "kernels.benchmarks.target_attention_bench", "--out", str(out)]
    serving = [
        python,
        "-m",
        "bench.device_serving",
        "--out",
        str(out),
        "--work",
        str(work / "device-bench"),
    ]
    if not dry_run:
        return [
            Step("parity", [*pytest, "-m", "not slow"], base, LIMITS_S["parity"]),
            Step("kernels", [*kernels, "--sweep", "standard"], base, LIMITS_S["kernels"]),
            Step("serving", [*serving, "--seconds", "4"], base, LIMITS_S["serving"]),
        ]
    cpu = base | {"TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": ""}
    return [
        Step("parity", [*pytest, "-m", "gpu"], base, LIMITS_S["parity"]),
        Step("kernels", [*kernels, "--smoke"], cpu, LIMITS_S["kernels"]),
        Step(
            "serving",
            [*serving, "--tiny", "--device", "cpu", "--concurrency", "1,2", "--seconds", "0.5"],
            cpu,
            LIMITS_S["serving"],
        ),
    ]


def run_step(step: Step, deadline: float) -> Outcome:
    limit = max(1.0, min(step.limit_s, deadline - time.monotonic()))
    typer.echo(f"== {step.name} (at most {limit:.0f} s): {' '.join(step.command)}", err=True)
    started = time.monotonic()
    try:
        done = subprocess.run(step.command, env=step.env, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return Outcome(step.name, False, time.monotonic() - started, f"over {limit:.0f} s")
    seconds = time.monotonic() - started
    return Outcome(step.name, done.returncode == 0, seconds, f"exit {done.returncode}")


def main(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="CPU-safe parts at tiny sizes; no GPU needed.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Reports folder (default: docs/).")] = None,
    work: Annotated[Path, typer.Option(help="Bundles, users; reports of a dry run.")] = Path(
        "var/gpu-check"
    ),
) -> None:
    started = time.monotonic()
    deadline = started + BUDGET_S
    try:
        found = environment(dry_run)
    except RuntimeError as error:
        typer.echo(f"gpu-check: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"== environment: {json.dumps(found)}", err=True)
    providers = found.get("onnxruntime_providers")
    if not dry_run and not (isinstance(providers, list) and "CUDAExecutionProvider" in providers):
        typer.echo(
            "   no onnxruntime-gpu: the device path runs its graphs in PyTorch (install "
            "onnxruntime-gpu to check ONNX Runtime's CUDA provider too)",
            err=True,
        )
    reports = out or (work / "docs" if dry_run else Path("docs"))
    outcomes = [run_step(step, deadline) for step in steps(sys.executable, reports, work, dry_run)]
    total = time.monotonic() - started
    for outcome in outcomes:
        mark = "ok" if outcome.ok else "FAILED"
        typer.echo(f"{outcome.name:8} {mark:6} {outcome.seconds:6.1f} s  {outcome.detail}")
    typer.echo(f"gpu-check {'dry run ' if dry_run else ''}done in {total:.0f} s -> {reports}")
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
