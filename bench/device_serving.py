"""The device path's serving benchmark: the ranking pipeline in process, closed loop.

    python -m bench.device_serving                       # on a CUDA GPU: W1 and W2
    python -m bench.device_serving --tiny --device cpu   # tiny shapes on the CPU (a dry run)

The service is started in this process as ``reaseq serve`` starts it (bundle loaded, verified,
warmed; embedded store; micro-batcher; device path as the settings choose), on a bundle of a
randomly initialised ranker at the workloads' shapes (:mod:`bench.model_bundle`; weights do not
change the arithmetic) and users with exactly the workloads' behaviour counts. For each workload
and each number of concurrent clients, every client sends its next request when the previous
one is answered, for a fixed time. Reported: throughput, p50/p95/p99 latency, and the model's
FLOP/s at that throughput over the device's float32 matmul peak measured in the same run. No HTTP:
the figures are the pipeline's (fetch, batching, scoring, top-k). Writes ``DEVICE_SERVING.md``
and ``device_serving.json``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import typer

from bench.model_bundle import GENERATOR, Exporter, RandomRanker, write_random_bundle
from bench.workloads import W1, W2, Workload
from service.contracts.manifest import read_manifest
from service.observability.metrics import ServiceMetrics
from service.ranking import RankQuery
from service.runtime import ServiceRuntime
from service.settings import Settings
from service.stores.snapshot import GeneratedBlocks, write_user_snapshot

COMMAND = "python -m bench.device_serving"
VERSION = "device-bench"
USERS = 200
TOP_K = 100
_NOW = 1_790_000_000
#: Tiny shapes for a dry run on the CPU (Triton in its interpreter).
TINY = [
    Workload("W1-tiny", candidates=8, real=6, generated=2),
    Workload("W2-tiny", candidates=16, real=12, generated=4),
]


@dataclass(frozen=True)
class Result:
    workload: str
    concurrency: int
    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    model_flops_per_s: float
    fraction_of_matmul_peak: float


def ranker_for(workloads: list[Workload], tiny: bool) -> RandomRanker:
    """The benchmark's ranker: d=64, 4 heads (the standard workloads), or a tiny one."""
    longest = max(w.real for w in workloads), max(w.generated for w in workloads)
    if tiny:
        return RandomRanker(items=64, max_sequence=longest[0], max_generated=longest[1])
    return RandomRanker(
        items=20_000,
        item_dim=64,
        heads=4,
        hidden_dim=128,
        user_layers=0,
        max_sequence=longest[0],
        max_generated=longest[1],
        semantic_dim=32,
    )


def build(work: Path, workloads: list[Workload], tiny: bool) -> tuple[Path, Path]:
    """The bundle root and the user snapshot under ``work`` (reused when there)."""
    root, users = work / "bundles", work / "users.npz"
    if not (root / VERSION).is_dir():
        exporter: Exporter = "torchscript" if tiny else "dynamo"
        write_random_bundle(root, VERSION, ranker_for(workloads, tiny), exporter)
    if not users.is_file():
        _write_users(users, root / VERSION, workloads, np.random.default_rng(0))
    return root, users


def _write_users(
    path: Path, bundle_dir: Path, workloads: list[Workload], rng: np.random.Generator
) -> None:
    manifest = read_manifest(bundle_dir)
    catalogue = np.load(bundle_dir / manifest.item_table.ids_file)
    vectors = np.load(bundle_dir / manifest.item_table.vectors_file)
    users, offsets, items, events, ts = [], [0], [], [], []
    gen_offsets, gen_items, gen_vectors = [0], [], []
    for workload in workloads:
        for n in range(USERS):
            users.append(user_id(workload, n))
            items.extend(catalogue[rng.integers(0, len(catalogue), workload.real)].tolist())
            events.extend(rng.integers(1, 4, workload.real).tolist())
            ts.extend(np.sort(_NOW - rng.integers(60, 90 * 86_400, workload.real)).tolist())
            offsets.append(len(items))
            picked = rng.choice(len(catalogue), workload.generated, replace=False)
            gen_items.extend(catalogue[picked].tolist())
            gen_vectors.append(np.asarray(vectors[picked], np.float16))
            gen_offsets.append(len(gen_items))
    write_user_snapshot(
        path,
        users,
        offsets,
        items,
        events,
        ts,
        GeneratedBlocks(
            np.asarray(users),
            np.asarray(gen_offsets),
            np.asarray(gen_items),
            np.concatenate(gen_vectors),
            GENERATOR.version,
        ),
    )


def user_id(workload: Workload, n: int) -> str:
    return f"{workload.name.lower()}-u{n}"


async def closed_loop(
    runtime: ServiceRuntime, workload: Workload, catalogue: list[str], clients: int, seconds: float
) -> list[float]:
    """Latencies (s) of every request answered while ``clients`` send back to back."""
    rng = np.random.default_rng(clients)
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client(seed: int) -> None:
        own = np.random.default_rng(int(rng.integers(1 << 31)) + seed)
        while time.perf_counter() < stop:
            picked = own.choice(len(catalogue), workload.candidates, replace=False)
            query = RankQuery(
                request_id=uuid.uuid4().hex,
                user_id=user_id(workload, int(own.integers(USERS))),
                candidates=[catalogue[i] for i in picked],
                top_k=TOP_K,
            )
            started = time.perf_counter()
            await runtime.served.rank(query)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return latencies


def matmul_peak(device: str) -> float:
    """Float32 matmul FLOP/s of the device (TF32 off, as the device path computes)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    size = 4096 if device == "cuda" else 512
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = 0.0
    for _ in range(5):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(10):
            a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 10 * 2 * size**3 / (time.perf_counter() - started))
    return best


async def run(
    settings: Settings,
    workloads: list[Workload],
    concurrency: list[int],
    seconds: float,
    hidden_dim: int,
    peak: float,
) -> list[Result]:
    runtime = await ServiceRuntime.load(settings, ServiceMetrics())
    try:
        await runtime.warm_up()
        catalogue = runtime.bundle.items.ids.tolist()
        item_dim = runtime.bundle.items.dim
        results = []
        for workload in workloads:
            flops = workload.model_flops(item_dim, hidden_dim)
            for clients in concurrency:
                latencies = await closed_loop(runtime, workload, catalogue, clients, seconds)
                q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
                rate = len(latencies) / seconds
                results.append(
                    Result(
                        workload.name,
                        clients,
                        len(latencies),
                        seconds,
                        rate,
                        1e3 * q[49],
                        1e3 * q[94],
                        1e3 * q[98],
                        rate * flops,
                        rate * flops / peak,
                    )
                )
                typer.echo(
                    f"{workload.name} x{clients}: {rate:.1f} req/s, p50 {1e3 * q[49]:.1f} ms, "
                    f"p99 {1e3 * q[98]:.1f} ms",
                    err=True,
                )
        return results
    finally:
        await runtime.close()


@dataclass(frozen=True)
class RunInfo:
    command: str
    device: str
    plan: str
    matmul_peak_flops: float
    seconds_per_point: float
    batch_max_candidates: int


def render(info: RunInfo, results: list[Result]) -> str:
    lines = [
        "# The device path, served in process",
        "",
        f"Regenerate with `{info.command}` (part of `make gpu-check`); it also writes "
        "`docs/device_serving.json`.",
        "",
        f"Device: **{info.device}**; {info.plan}. Float32 matmul peak measured in the same run: "
        f"{info.matmul_peak_flops / 1e12:.2f} TFLOP/s (TF32 off). Closed loop: each client sends "
        f"its next request when the previous one is answered, {info.seconds_per_point} s per "
        f"point, top_k {TOP_K}, micro-batches of up to {info.batch_max_candidates} candidates, "
        f"{USERS} users per workload (their encoded behaviours cached on the device after their "
        "first request), candidates drawn at random from the catalogue; no HTTP.",
        "",
        "| workload | clients | req/s | p50 ms | p95 ms | p99 ms | model TFLOP/s "
        "| % of matmul peak |",
        "|" + " --- |" * 8,
    ]
    for r in results:
        lines.append(
            f"| {r.workload} | {r.concurrency} | {r.throughput:.1f} | {r.p50_ms:.2f} "
            f"| {r.p95_ms:.2f} | {r.p99_ms:.2f} | {r.model_flops_per_s / 1e12:.3f} "
            f"| {100 * r.fraction_of_matmul_peak:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(
    out: Annotated[Path, typer.Option(help="Folder for DEVICE_SERVING.md and the JSON.")] = Path(
        "docs"
    ),
    work: Annotated[Path, typer.Option(help="Bundle and users (reused).")] = Path(
        "var/device-bench"
    ),
    device: Annotated[str, typer.Option(help="cuda, or cpu for a dry run.")] = "cuda",
    backend: Annotated[str, typer.Option(help="Attention backend: triton or torch.")] = "triton",
    tiny: Annotated[bool, typer.Option(help="Tiny shapes (dry run on the CPU).")] = False,
    concurrency: Annotated[str, typer.Option(help="Concurrent clients per point.")] = "1,8,32",
    seconds: Annotated[float, typer.Option(help="Seconds per point.")] = 5.0,
    batch_max_candidates: Annotated[
        int, typer.Option(help="REASEQ_BATCH_MAX_CANDIDATES of the served pipeline.")
    ] = 16384,
) -> None:
    workloads = TINY if tiny else [W1, W2]
    if device not in ("cpu", "cuda") or backend not in ("triton", "torch"):
        raise typer.BadParameter("--device is cuda or cpu, --backend triton or torch")
    root, users = build(work, workloads, tiny)
    target: Literal["cpu", "cuda"] = "cuda" if device == "cuda" else "cpu"
    # As `reaseq serve` would read them from the environment; admission and deadlines opened up
    # so that the closed loop measures scoring, not load shedding.
    settings = Settings.model_validate(
        {
            "bundle_root": root,
            "bundle_version": VERSION,
            "embedded_users_path": users,
            "store": "embedded",
            "device": target,
            "attention_backend": backend,
            "batch_max_candidates": batch_max_candidates,
            "rank_max_in_flight": 256,
            "rank_max_queued": 256,
            "default_timeout_ms": 60_000,
            "access_log": False,
        }
    )
    from service.device.plan import plan_scoring

    plan = plan_scoring(settings)
    peak = matmul_peak(device)
    hidden = ranker_for(workloads, tiny).hidden_dim
    clients = [int(c) for c in concurrency.split(",")]
    results = asyncio.run(run(settings, workloads, clients, seconds, hidden, peak))
    from service.device.context import device_context

    info = RunInfo(
        command=COMMAND + (f" --tiny --device {device}" if tiny else ""),
        device=device_context(target, 0).name,
        plan=plan.describe(),
        matmul_peak_flops=peak,
        seconds_per_point=seconds,
        batch_max_candidates=batch_max_candidates,
    )
    document = asdict(info) | {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "workloads": [asdict(w) for w in workloads],
        "results": [asdict(r) for r in results],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "device_serving.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "DEVICE_SERVING.md").write_text(render(info, results))
    typer.echo(f"{len(results)} points on {info.device} -> {out}")


if __name__ == "__main__":
    typer.run(main)
