"""``python -m bench.cpu_attention``: the CPU serving path's target attention at the standard
workloads' shapes, the whole request in one onnxruntime call against cache-sized chunks of its
candidates, timed back to back and with the core idle between requests.

A W2 request's logits take 32 MB (4 heads x 2000 candidates x 1000 behaviours, float32). Timed
back to back, that memory stays warm and one call looks fastest; in a service, other work runs
between two requests and the logits are written to and read back from cold memory. Both regimes
are timed, for both pools of a request (real and generated behaviours), through
:class:`kernels.target_attention.cpu.OnnxAttention` (one thread, as the service runs it) with each
chunk size, and through the NumPy fallback. Writes ``docs/CPU_ATTENTION.md`` and
``docs/cpu_attention.json``.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from bench.workloads import WORKLOADS, Workload
from kernels.target_attention.cpu import (
    ONNX_CHUNK_BYTES,
    CpuAttention,
    HeadMajorBehaviours,
    NumpyAttention,
    OnnxAttention,
)

app = typer.Typer(add_completion=False, help=__doc__)

HEADS, HEAD_DIM = 4, 16  # the demo ranker's: item_dim 64 over 4 heads
MIB = 1 << 20
#: Chunk budgets timed besides one call for the whole request (0).
CHUNK_MIB = (0, 1, 2, 4, 8)
#: A budget no request reaches: the whole request in one call.
WHOLE_REQUEST_BYTES = 1 << 62


@dataclass(frozen=True)
class Timing:
    workload: str
    kernel: str
    #: Logits per onnxruntime call in MiB; 0: the whole request in one call; None: NumPy.
    chunk_mib: float | None
    back_to_back_ms: float
    idle_between_ms: float
    #: onnxruntime calls for the real pool of one request (1: the whole request at once).
    calls: int = 1


@dataclass(frozen=True)
class Pools:
    """One request's queries and behaviours, real and generated, head-major."""

    real_queries: np.ndarray
    generated_queries: np.ndarray
    real: HeadMajorBehaviours
    generated: HeadMajorBehaviours

    @classmethod
    def random(cls, workload: Workload, seed: int = 0) -> Pools:
        rng = np.random.default_rng(seed)
        dim = HEADS * HEAD_DIM

        def rows(n: int) -> np.ndarray:
            return rng.standard_normal((n, dim), dtype=np.float32)

        return cls(
            rows(workload.candidates),
            rows(workload.candidates),
            HeadMajorBehaviours.from_rows(rows(workload.real), rows(workload.real), HEADS),
            HeadMajorBehaviours.from_rows(
                rows(workload.generated), rows(workload.generated), HEADS
            ),
        )

    def attend(self, attention: CpuAttention) -> None:
        attention(self.real_queries, self.real)
        attention(self.generated_queries, self.generated)


def median_ms(pools: Pools, attention: CpuAttention, repeats: int, idle_s: float) -> float:
    """Median wall time of one request's attention; ``idle_s`` asleep before each call."""
    pools.attend(attention)
    times = []
    for _ in range(repeats):
        if idle_s:
            time.sleep(idle_s)
        started = time.perf_counter()
        pools.attend(attention)
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def measure(
    workload: Workload, repeats: int, idle_s: float, chunks_mib: tuple[float, ...] = CHUNK_MIB
) -> list[Timing]:
    pools = Pools.random(workload)
    kernels: list[tuple[str, float | None, CpuAttention]] = [
        ("onnxruntime", mib, OnnxAttention(HEADS, HEAD_DIM, int(mib * MIB) or WHOLE_REQUEST_BYTES))
        for mib in chunks_mib
    ]
    kernels.append(("numpy", None, NumpyAttention()))
    return [
        Timing(
            workload.name,
            name,
            mib,
            median_ms(pools, attention, repeats, 0.0),
            median_ms(pools, attention, repeats, idle_s),
            calls(workload, attention) if isinstance(attention, OnnxAttention) else 1,
        )
        for name, mib, attention in kernels
    ]


def calls(workload: Workload, attention: OnnxAttention) -> int:
    """onnxruntime calls for a request's real pool, as :class:`OnnxAttention` chunks it."""
    return -(-workload.candidates // attention.rows_per_call(workload.real))


def findings(timings: list[Timing], idle_ms: float) -> list[str]:
    """What the table says, per workload, read off the figures."""
    lines = []
    default_mib = ONNX_CHUNK_BYTES / MIB
    for workload in dict.fromkeys(t.workload for t in timings):
        rows = [t for t in timings if t.workload == workload and t.kernel == "onnxruntime"]
        whole = next(t for t in rows if t.chunk_mib == 0)
        default = next((t for t in rows if t.chunk_mib == default_mib), None)
        best = min(rows, key=lambda t: t.idle_between_ms)
        best_name = "one call" if best.chunk_mib == 0 else f"{best.chunk_mib:g} MiB chunks"
        line = (
            f"- {workload}, with {idle_ms:g} ms idle before each request: one call "
            f"{whole.idle_between_ms:.2f} ms (back to back {whole.back_to_back_ms:.2f} ms); "
            f"fastest {best_name} at {best.idle_between_ms:.2f} ms"
        )
        if default is not None:
            change = default.idle_between_ms / whole.idle_between_ms - 1.0
            line += (
                f"; the default ({default_mib:g} MiB) {default.idle_between_ms:.2f} ms, "
                f"{change:+.0%} against one call"
            )
            if default.calls == 1:
                line += " (it makes one call at this size too: the same work, so the "
                line += "difference is the run's noise)"
            else:
                line += f" ({default.calls} calls for the real pool)"
        lines.append(line + ".")
    return lines


def render(timings: list[Timing], idle_ms: float, repeats: int, machine: str) -> str:
    lines = [
        "# CPU target attention: one call or cache-sized chunks",
        "",
        f"_Regenerate with `python -m bench.cpu_attention`; measured on {machine}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC._",
        "",
        f"One request's attention (real and generated pools; {HEADS} heads of {HEAD_DIM}), "
        f"median of {repeats} requests: back to back, and with {idle_ms:g} ms asleep before each "
        "request, as between two requests of a service. `onnxruntime` is the CPU serving kernel "
        "(one thread) with at most the given MiB of logits per call (0: the whole request in "
        "one call); `numpy` is the fallback without the onnx package (its own 512 KiB chunks). "
        f"The service's default is {ONNX_CHUNK_BYTES / MIB:g} MiB "
        "(`REASEQ_ATTENTION_CHUNK_KB` sets it).",
        "",
        "| workload | kernel | MiB of logits per call | back to back ms | idle between ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in timings:
        chunk = (
            "—" if t.chunk_mib is None else ("whole" if t.chunk_mib == 0 else f"{t.chunk_mib:g}")
        )
        lines.append(
            f"| {t.workload} | {t.kernel} | {chunk} | {t.back_to_back_ms:.2f} | "
            f"{t.idle_between_ms:.2f} |"
        )
    return "\n".join([*lines, "", *findings(timings, idle_ms)]) + "\n"


@app.command()
def main(
    workloads: Annotated[str, typer.Option(help="Comma-separated workloads.")] = "W1,W2",
    repeats: Annotated[int, typer.Option(min=3)] = 30,
    idle_ms: Annotated[float, typer.Option(min=0, help="Sleep before each request.")] = 30.0,
    docs_dir: Annotated[Path, typer.Option(help="Where the report goes.")] = Path("docs"),
) -> None:
    from model_export.report import machine_description

    names = [w.strip() for w in workloads.split(",") if w.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise typer.BadParameter(f"unknown workloads {unknown}; choose from {sorted(WORKLOADS)}")
    timings = [t for n in names for t in measure(WORKLOADS[n], repeats, idle_ms / 1000.0)]
    text = render(timings, idle_ms, repeats, machine_description())
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / "CPU_ATTENTION.md").write_text(text)
    (docs_dir / "cpu_attention.json").write_text(
        json.dumps(
            {"idle_ms": idle_ms, "repeats": repeats, "timings": [asdict(t) for t in timings]},
            indent=2,
        )
        + "\n"
    )
    typer.echo(text)


if __name__ == "__main__":
    app()
