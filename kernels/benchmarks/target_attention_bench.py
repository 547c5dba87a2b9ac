"""Benchmark of jagged target attention on a GPU: the Triton kernel against PyTorch SDPA on the
same work padded to the longest request, and against a naive per-request PyTorch loop.

    python -m kernels.benchmarks.target_attention_bench                    # full sweep, CUDA GPU
    python -m kernels.benchmarks.target_attention_bench --sweep standard   # W1/W2 shapes only
    python -m kernels.benchmarks.target_attention_bench --smoke            # tiny, CPU interpreter

Times are medians of ``triton.testing.do_bench`` on CUDA (a wall-clock median elsewhere).
Achieved FLOP/s and bytes/s are set against the roofline measured in the same run (a large
matmul per dtype; a large device copy). Writes ``docs/KERNELS.md`` and ``docs/kernels.json``
with the GPU's name; ``--smoke`` writes to ``--out`` only and is what the test suite runs.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F
import typer

from kernels.target_attention import (
    AttentionBackend,
    AttentionPool,
    jagged_target_attention,
    offsets_from_lengths,
)

COMMAND = "python -m kernels.benchmarks.target_attention_bench"
HEADS = 4
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Workload:
    requests: int
    candidates: int  # longest request; others draw uniformly from [half, all]
    sequence: int  # real behaviours of the longest request
    generated: int
    head_dim: int
    dtype: str


@dataclass(frozen=True)
class Measurement:
    workload: Workload
    triton_ms: float
    sdpa_ms: float
    naive_ms: float
    flops: float
    bytes: float
    tflops: float
    tbytes_per_s: float
    fraction_of_flop_peak: float
    fraction_of_bandwidth_peak: float
    speedup_vs_sdpa: float
    speedup_vs_naive: float


def full_sweep() -> list[Workload]:
    grid = itertools.product(
        (1, 8, 64), (100, 500, 2000), (16, 256, 1000, 2000), (16, 64), tuple(DTYPES)
    )
    return [Workload(r, c, s, 32 if s >= 1000 else 16, hd, dt) for r, c, s, hd, dt in grid]


def standard_sweep() -> list[Workload]:
    """The standard workloads' attention (W1: 500 candidates over 256 + 16 behaviours, W2: 2000
    over 1000 + 32; d = 64 over 4 heads) in batches of 1, 8 and 64 requests: what
    ``make gpu-check`` measures in its time budget."""
    shapes = ((500, 256, 16), (2000, 1000, 32))
    grid = itertools.product((1, 8, 64), shapes, tuple(DTYPES))
    return [Workload(r, c, s, g, 16, dt) for r, (c, s, g), dt in grid]


SWEEPS = {"full": full_sweep, "standard": standard_sweep}


def smoke_sweep() -> list[Workload]:
    return [Workload(2, 20, 24, 4, 16, "float32"), Workload(3, 17, 40, 0, 16, "float16")]


def bench(fn: Callable[[], object], device: torch.device) -> float:
    """Median milliseconds of ``fn``."""
    if device.type == "cuda":
        import triton.testing

        return float(triton.testing.do_bench(fn, return_mode="median"))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


@dataclass(frozen=True)
class Roofline:
    flops_per_s: dict[str, float]
    bytes_per_s: float


def measure_roofline(device: torch.device, size: int) -> Roofline:
    """Peak matmul FLOP/s per dtype and device-copy bandwidth, measured now on this device."""
    flops = {}
    for name, dtype in DTYPES.items():
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        flops[name] = 2 * size**3 / (bench(partial(torch.matmul, a, b), device) / 1e3)
    src = torch.empty(size * size * 16, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    seconds = bench(lambda: dst.copy_(src), device) / 1e3
    return Roofline(flops, 2 * src.numel() / seconds)  # read + write


@dataclass
class Batch:
    offsets: np.ndarray
    pools: list[AttentionPool[torch.Tensor]]
    candidates: list[int]
    lengths: list[list[int]]


def make_batch(work: Workload, device: torch.device, rng: np.random.Generator) -> Batch:
    dtype, dim = DTYPES[work.dtype], HEADS * work.head_dim

    def draw(longest: int) -> list[int]:
        if longest == 0:
            return [0] * work.requests
        lengths = rng.integers(max(longest // 2, 1), longest + 1, work.requests)
        lengths[0] = longest
        return [int(n) for n in lengths]

    candidates = draw(work.candidates)
    total = sum(candidates)

    def tensor(rows: int) -> torch.Tensor:
        return torch.randn(rows, dim, device=device).to(dtype)

    pools, lengths = [], []
    for longest in (work.sequence, work.generated):
        pool_lengths = draw(longest)
        rows = sum(pool_lengths)
        offsets = offsets_from_lengths(pool_lengths)
        pools.append(AttentionPool(tensor(total), tensor(rows), tensor(rows), offsets))
        lengths.append(pool_lengths)
    return Batch(offsets_from_lengths(candidates), pools, candidates, lengths)


def padded(batch: Batch, heads: int) -> list[tuple[torch.Tensor, ...]]:
    """Each pool padded to the longest request: ``q [R,H,C,Dh]``, ``k/v [R,H,L,Dh]``, mask."""
    out: list[tuple[torch.Tensor, ...]] = []
    for pool, lengths in zip(batch.pools, batch.lengths, strict=True):
        longest_c, longest_l = max(batch.candidates), max(max(lengths), 1)
        dim = pool.queries.shape[1]
        dev, dt = pool.queries.device, pool.queries.dtype
        q = torch.zeros(len(lengths), longest_c, dim, device=dev, dtype=dt)
        k = torch.zeros(len(lengths), longest_l, dim, device=dev, dtype=dt)
        v = torch.zeros_like(k)
        mask = torch.zeros(len(lengths), 1, 1, longest_l, dtype=torch.bool, device=dev)
        for r, (c, n) in enumerate(zip(batch.candidates, lengths, strict=True)):
            c0, l0 = int(batch.offsets[r]), int(pool.offsets[r])
            q[r, :c] = pool.queries[c0 : c0 + c]
            k[r, :n], v[r, :n] = pool.keys[l0 : l0 + n], pool.values[l0 : l0 + n]
            mask[r, ..., : max(n, 1)] = True  # an empty request attends to one zero key

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

        out.append((split(q), split(k), split(v), mask))
    return out


def naive(batch: Batch, heads: int) -> list[torch.Tensor]:
    """Per request, per pool: plain softmax attention in the input dtype."""
    results = []
    for pool in batch.pools:
        out = torch.zeros_like(pool.queries)
        for r in range(len(batch.candidates)):
            c0, c1 = int(batch.offsets[r]), int(batch.offsets[r + 1])
            l0, l1 = int(pool.offsets[r]), int(pool.offsets[r + 1])
            if c1 == c0 or l1 == l0:
                continue
            q = pool.queries[c0:c1].view(c1 - c0, heads, -1).transpose(0, 1)
            k = pool.keys[l0:l1].view(l1 - l0, heads, -1).transpose(0, 1)
            v = pool.values[l0:l1].view(l1 - l0, heads, -1).transpose(0, 1)
            w = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)
            out[c0:c1] = (w @ v).transpose(0, 1).reshape(c1 - c0, -1)
        results.append(out)
    return results


def work_of(batch: Batch, work: Workload) -> tuple[float, float]:
    """FLOPs (QK and PV products) and the bytes a perfect kernel moves (Q, K, V in; out)."""
    dim, size = HEADS * work.head_dim, torch.finfo(DTYPES[work.dtype]).bits // 8
    flops = bytes_ = 0.0
    for lengths in batch.lengths:
        for c, n in zip(batch.candidates, lengths, strict=True):
            flops += 4.0 * c * n * dim
            bytes_ += (2 * c * dim + 2 * n * dim) * size
    return flops, bytes_


def measure(
    work: Workload, roofline: Roofline, device: torch.device, rng: np.random.Generator
) -> Measurement:
    batch = make_batch(work, device, rng)
    pads = padded(batch, HEADS)

    def run_triton() -> object:
        return jagged_target_attention(
            batch.offsets, batch.pools, HEADS, False, AttentionBackend.TRITON
        )

    def run_sdpa() -> object:
        return [F.scaled_dot_product_attention(q, k, v, attn_mask=m) for q, k, v, m in pads]

    triton_ms = bench(run_triton, device)
    sdpa_ms = bench(run_sdpa, device)
    naive_ms = bench(lambda: naive(batch, HEADS), device)
    flops, bytes_ = work_of(batch, work)
    seconds = triton_ms / 1e3
    return Measurement(
        workload=work, triton_ms=triton_ms, sdpa_ms=sdpa_ms, naive_ms=naive_ms,
        flops=flops, bytes=bytes_, tflops=flops / seconds / 1e12,
        tbytes_per_s=bytes_ / seconds / 1e12,
        fraction_of_flop_peak=flops / seconds / roofline.flops_per_s[work.dtype],
        fraction_of_bandwidth_peak=bytes_ / seconds / roofline.bytes_per_s,
        speedup_vs_sdpa=sdpa_ms / triton_ms, speedup_vs_naive=naive_ms / triton_ms,
    )  # fmt: skip


def render(command: str, device_name: str, roofline: Roofline, results: list[Measurement]) -> str:
    peaks = ", ".join(f"{k} {v / 1e12:.1f} TFLOP/s" for k, v in roofline.flops_per_s.items())
    lines = [
        "# Target-attention kernels",
        "",
        f"Regenerate with `{command}` on the GPU (`make gpu-check` runs it); it also writes "
        "`docs/kernels.json`.",
        "",
        f"Device: **{device_name}**. Measured roofline: {peaks}; copy bandwidth "
        f"{roofline.bytes_per_s / 1e12:.2f} TB/s. Heads {HEADS}; jagged batches (each request's "
        "candidates and behaviours drawn between half and all of the longest).",
        "",
        "| requests | candidates | sequence | generated | head dim | dtype | Triton ms | SDPA ms "
        "| naive ms | TFLOP/s | % FLOP peak | TB/s | % BW peak | × SDPA | × naive |",
        "|" + " --- |" * 15,
    ]
    for m in results:
        w = m.workload
        lines.append(
            f"| {w.requests} | {w.candidates} | {w.sequence} | {w.generated} | {w.head_dim} "
            f"| {w.dtype} | {m.triton_ms:.3f} | {m.sdpa_ms:.3f} | {m.naive_ms:.3f} "
            f"| {m.tflops:.2f} | {100 * m.fraction_of_flop_peak:.1f} | {m.tbytes_per_s:.2f} "
            f"| {100 * m.fraction_of_bandwidth_peak:.1f} | {m.speedup_vs_sdpa:.2f} "
            f"| {m.speedup_vs_naive:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(
    smoke: Annotated[
        bool, typer.Option(help="Tiny shapes; runs on CPU in the interpreter.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Folder for KERNELS.md and kernels.json.")] = Path(
        "docs"
    ),
    sweep: Annotated[str, typer.Option(help="full, or standard (the W1/W2 shapes).")] = "full",
    seed: int = 0,
) -> None:
    if sweep not in SWEEPS:
        raise typer.BadParameter(f"--sweep is one of {sorted(SWEEPS)}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not smoke:
        raise typer.BadParameter("the full sweep needs a CUDA GPU; use --smoke on CPU")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (interpreter)"
    roofline = measure_roofline(device, 4096 if device.type == "cuda" else 128)
    rng = np.random.default_rng(seed)
    results = [
        measure(w, roofline, device, rng) for w in (smoke_sweep() if smoke else SWEEPS[sweep]())
    ]
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "command": COMMAND + (" --smoke" if smoke else f" --sweep {sweep}"),
        "device": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "roofline": asdict(roofline),
        "results": [asdict(m) for m in results],
    }
    (out / "kernels.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "KERNELS.md").write_text(render(str(document["command"]), name, roofline, results))
    typer.echo(f"{len(results)} workloads on {name} -> {out}")


if __name__ == "__main__":
    typer.run(main)
