"""``python -m bench.offline_scale``: rows per second, and per core, of the offline pipelines in one
process against a local Ray (:mod:`offline.scale`), on a synthetic dataset, and the capacity plan
those rates give: docs/offline_scale.json and the "Offline pipelines on Ray" section of
docs/SCALE.md (:mod:`bench.offline_scale_plan`, written by :func:`bench.loader_scale.write_section`,
which keeps the other sections).

Three child processes: one prepares the inputs (the dataset, knowledge records, vectors, a
generator trained for one epoch on a sample of users, and a publish-only bundle: the manifest and
item table publishing reads), one runs every stage in a single process on one core (one PyTorch
thread), one runs them on a local Ray of ``--num-cpus`` CPUs. A stage's peak RSS is its own (the
process's peak is reset before it, Linux ``/proc/self/clear_refs``); on Ray it is also the peak
of the summed RSS of the driver and every process under it (workers, raylet, object store),
sampled every 0.1 s. Publishing writes to a redis-server started here on a free loopback port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from bench.loader_scale import peak_mib, write_section
from bench.offline_scale_plan import SECTION, capacity_plan, markdown

app = typer.Typer(add_completion=False, help=__doc__)

JSON_FILE = "offline_scale.json"
PRESETS = ("tiny", "small", "demo", "large")
DIM = 32  # semantic vectors and the bundle's item vectors
MAX_SEQUENCE = 50  # the sequence length published per user
BUNDLE = "bench-1"
_CHILD = """
import json, sys
from bench.offline_scale import child
print(json.dumps(child(sys.argv[1], json.loads(sys.argv[2]))))
"""


def child(mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    """In a child process: ``prepare`` the inputs, or measure every stage ``single`` / ``ray``."""
    if mode == "prepare":
        return prepare(spec)
    return measure(spec, on_ray=mode == "ray")


def prepare(spec: dict[str, Any]) -> dict[str, Any]:
    """The inputs in ``spec["work"]``, made once per dataset and kept."""
    import numpy as np

    from offline.data.synthetic import SyntheticConfig, generate
    from offline.encode import TfidfSvdEncoder, encode_records
    from offline.gbr.train import GBRTrainConfig, train_gbr
    from offline.knowledge import OfflineKnowledgeBackend
    from offline.knowledge.runner import write_records

    work = Path(spec["work"])
    done = work / "ready.json"
    if done.is_file():
        return dict(json.loads(done.read_text()))
    sizes = {k: spec[k] for k in ("items", "users") if spec[k] is not None}
    overrides = {"n_items": sizes["items"]} if "items" in sizes else {}
    overrides |= {"n_users": sizes["users"]} if "users" in sizes else {}
    dataset = generate(SyntheticConfig.preset(spec["preset"], seed=spec["seed"], **overrides))
    dataset.save(work / "data")
    records = OfflineKnowledgeBackend().describe(dataset.catalogue)
    write_records(records, work / "records.jsonl")
    vectors, _ = encode_records(records, TfidfSvdEncoder(dim=DIM, seed=spec["seed"]))
    rng = np.random.default_rng(spec["seed"])
    active = np.unique(dataset.behaviours.user_idx).astype(np.int64)
    train_users = rng.choice(active, min(len(active), 2000), replace=False)
    config = GBRTrainConfig(tokens=spec["gbr_tokens"], epochs=1, seed=spec["seed"])
    train_gbr(dataset, vectors, config, users=np.sort(train_users)).save(work / "gbr")
    sample = np.sort(rng.choice(active, min(len(active), spec["generate_users"]), replace=False))
    np.save(work / "generate_users.npy", sample)
    _publish_bundle(work / "bundles" / BUNDLE, dataset.catalogue.item_ids, vectors)
    found = {"items": len(dataset.catalogue), "users": len(dataset.user_ids)}
    found |= {"generated_users": len(sample), "behaviours": len(dataset.behaviours)}
    done.write_text(json.dumps(found))
    return found


def _publish_bundle(directory: Path, ids: Any, vectors: Any) -> None:
    """The manifest and item table publishing reads (no graphs: nothing here serves it)."""
    import numpy as np

    from service.contracts.features import EVENT_TYPES, TIME_GAP_BUCKETS
    from service.contracts.manifest import (
        MANIFEST_FILE,
        BundleManifest,
        FeatureSchema,
        ItemTable,
        MaxLengths,
        ModelDimensions,
    )

    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "item_ids.npy", np.asarray(ids, np.str_))
    np.save(directory / "item_vectors.npy", np.asarray(vectors, np.float16))
    manifest = BundleManifest(
        version=BUNDLE,
        created_at=datetime.now(UTC),
        dimensions=ModelDimensions(item_dim=vectors.shape[1], heads=1, semantic_dim=0),
        max_lengths=MaxLengths(sequence=MAX_SEQUENCE, generated=16),
        features=FeatureSchema(event_types=list(EVENT_TYPES), time_gap_buckets=TIME_GAP_BUCKETS),
        graphs={},
        item_table=ItemTable(
            ids_file="item_ids.npy",
            vectors_file="item_vectors.npy",
            dtype="float16",
            rows=len(ids),
            default_vector=[0.0] * vectors.shape[1],
        ),
    )
    (directory / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))


def measure(spec: dict[str, Any], *, on_ray: bool) -> dict[str, Any]:
    """Every stage of ``spec["stages"]``, timed, with its rows and peak memory."""
    import torch

    torch.set_num_threads(1)
    stages = _stages(spec, on_ray)
    if not on_ray:
        return {"runs": _timed(stages, spec["stages"], None)}
    import ray

    from offline.scale.session import RayOptions, ray_session

    with ray_session(RayOptions(num_cpus=spec["num_cpus"])):
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        cpus = int(ray.cluster_resources().get("CPU", 1))
        runs = _timed(stages, spec["stages"], cpus)
    return {"runs": runs, "ray": ray.__version__}


def _stages(spec: dict[str, Any], on_ray: bool) -> dict[str, Callable[[], int]]:
    """Each stage as a call that returns the rows it handled, inputs loaded beforehand."""
    import numpy as np

    from offline.data.canonical import Dataset
    from offline.encode import TfidfSvdEncoder, encode_records
    from offline.gbr.checkpoint import GBRModel
    from offline.gbr.generate import GenerationConfig
    from offline.gbr.nearline import generate_users
    from offline.knowledge import OfflineKnowledgeBackend
    from offline.knowledge.runner import describe_catalogue, read_records
    from offline.publish.sequences import latest_sequences
    from offline.publish.stores import publish_redis
    from service.bundles.loaded import load_item_table
    from service.contracts.manifest import read_manifest
    from service.stores.config import RedisStoreConfig

    work = Path(spec["work"])
    dataset = Dataset.load(work / "data")
    records = read_records(work / "records.jsonl")
    model = GBRModel.load(work / "gbr")
    users = np.load(work / "generate_users.npy")
    bundle = work / "bundles" / BUNDLE
    table = load_item_table(bundle, read_manifest(bundle))
    config = GenerationConfig()  # the nearline defaults: K=16, 4 steps, greedy
    sequences = latest_sequences(dataset, MAX_SEQUENCE)
    store = RedisStoreConfig(url=spec["redis_url"])

    catalogue = dataset.catalogue
    if not on_ray:
        return {
            "knowledge": lambda: len(describe_catalogue(catalogue)[0]),
            "knowledge (fast path)": lambda: len(OfflineKnowledgeBackend().describe(catalogue)),
            "encode": lambda: len(encode_records(records, TfidfSvdEncoder(DIM))[0]),
            "generate": lambda: len(generate_users(model, dataset, users, config, table)),
            "publish": lambda: _keys(publish_redis(sequences, bundle, store)),
        }
    from offline.scale.encode import encode_records_ray
    from offline.scale.generate import generate_users_ray
    from offline.scale.knowledge import describe_lines_ray
    from offline.scale.publish import ray_writes
    from offline.scale.session import WorkerPool

    pool = WorkerPool(shard_rows=spec["shard_rows"])
    return {
        "knowledge": lambda: len(describe_lines_ray(catalogue, pool=pool)[0]),
        "encode": lambda: len(encode_records_ray(records, TfidfSvdEncoder(DIM), pool)[0]),
        "generate": lambda: len(
            generate_users_ray(model, dataset, users, config, table, pool=pool)
        ),
        "publish": lambda: _keys(
            publish_redis(sequences, bundle, store, writes=ray_writes(store, pool))
        ),
    }


def _keys(counts: dict[str, int]) -> int:
    return counts["items"] + counts["users"]


def _timed(
    stages: dict[str, Callable[[], int]], wanted: list[str], cpus: int | None
) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    for name, run in stages.items():
        if name.split(" ")[0] not in wanted:
            continue
        reset = _reset_peak()
        with _tree_memory() as tree:
            started = time.perf_counter()
            rows = run()
            seconds = time.perf_counter() - started
        runs[name] = {
            "rows": rows,
            "seconds": seconds,
            "cores": cpus or 1,
            "peak_mib": peak_mib(),
            "peak_is_the_stage_own": reset,
        }
        if cpus is not None:
            runs[name]["all_processes_peak_mib"] = tree["peak_mib"]
    return runs


def _reset_peak() -> bool:
    """Reset this process's peak RSS (``VmHWM``); False where Linux does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextmanager
def _tree_memory(interval_s: float = 0.1) -> Iterator[dict[str, float]]:
    """The peak of the summed RSS of this process and every process under it, while the block
    runs."""
    import psutil

    found = {"peak_mib": 0.0}
    stop = threading.Event()

    def sample() -> None:
        me = psutil.Process()
        while not stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                with suppress(psutil.Error):
                    total += process.memory_info().rss
            found["peak_mib"] = max(found["peak_mib"], total / 2**20)
            stop.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield found
    finally:
        stop.set()
        sampler.join()


def _run_child(mode: str, spec: dict[str, Any], threads: int | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # always a local Ray
    if threads is not None:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@contextmanager
def _redis_server(work: Path) -> Iterator[str]:
    """A redis-server on a free loopback port, without persistence, for the publish stage."""
    import redis

    from chaos.stack import redis_server_binary
    from loadtest.service_process import free_port

    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    command = [
        redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
        "--save", "", "--appendonly", "no",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with redis.Redis(port=port, socket_timeout=1) as client:
                    client.ping()
                break
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _flush(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as client:
        client.flushall()


@app.command()
def main(
    preset: Annotated[str, typer.Option(help=f"Synthetic preset: {', '.join(PRESETS)}.")] = "large",
    items: Annotated[int | None, typer.Option(min=2, help="Catalogue size (preset's).")] = None,
    users: Annotated[int | None, typer.Option(min=1, help="Users (preset's).")] = None,
    generate_users: Annotated[int, typer.Option(min=1, help="Users sampled for generate.")] = 5000,
    num_cpus: Annotated[int, typer.Option(min=1, help="CPUs of the local Ray.")] = (
        os.cpu_count() or 1
    ),
    shard_rows: Annotated[int, typer.Option(min=1, help="Rows per shard.")] = 4096,
    gbr_tokens: Annotated[str, typer.Option(help="Generator tokens: items or semantic.")] = (
        "semantic"
    ),
    stages: Annotated[
        str, typer.Option(help="Stages, comma-separated.")
    ] = "knowledge,encode,generate,publish",
    cores_per_node: Annotated[int, typer.Option(min=1, help="Capacity plan: cores a node.")] = 16,
    target_users: Annotated[int, typer.Option(min=1)] = 100_000_000,
    target_items: Annotated[int, typer.Option(min=1)] = 10_000_000,
    active_users_per_s: Annotated[
        int, typer.Option(min=1, help="Nearline plan: users with new events a second.")
    ] = 2_000,
    cycle_s: Annotated[int, typer.Option(min=1, help="Nearline plan: seconds a cycle.")] = 300,
    work_dir: Annotated[Path, typer.Option(help="Inputs, kept between runs.")] = Path(
        "var/offline_scale"
    ),
    docs_dir: Annotated[Path, typer.Option(help="Where SCALE.md and the JSON go.")] = Path("docs"),
    seed: int = 0,
) -> None:
    """Prepare the inputs (once), measure each stage in one process and on Ray, write the docs."""
    if preset not in PRESETS:
        raise typer.BadParameter(f"choose one of {', '.join(PRESETS)}", param_hint="--preset")
    wanted = [s.strip() for s in stages.split(",") if s.strip()]
    work = work_dir / f"{preset}-{items}-{users}-{generate_users}-{gbr_tokens}-{seed}"
    spec: dict[str, Any] = {
        "work": str(work), "preset": preset, "items": items, "users": users, "seed": seed,
        "generate_users": generate_users, "gbr_tokens": gbr_tokens, "num_cpus": num_cpus,
        "shard_rows": shard_rows, "stages": wanted,
    }  # fmt: skip
    sizes = _run_child("prepare", spec, None)
    typer.echo(f"inputs: {sizes} in {work}")
    with _redis_server(work / "redis") as url:  # empty for each path: every user is new
        single = _run_child("single", spec | {"redis_url": url}, 1)
        typer.echo(f"one process: {single['runs']}")
        _flush(url)
        on_ray = _run_child("ray", spec | {"redis_url": url}, None)
        typer.echo(f"ray: {on_ray['runs']}")
    from model_export.report import machine_description  # heavy: after the children ran

    report: dict[str, Any] = {
        "command": "python -m bench.offline_scale " + " ".join(sys.argv[1:]),
        "machine": machine_description(),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "ray_version": on_ray["ray"],
        "num_cpus": num_cpus,
        "gbr_tokens": gbr_tokens,
        "dataset": sizes,
        "single": single["runs"],
        "ray": on_ray["runs"],
        "plan": {
            "cores_per_node": cores_per_node,
            "target_users": target_users,
            "target_items": target_items,
            "active_users_per_s": active_users_per_s,
            "cycle_s": cycle_s,
        },
    }
    report["capacity"] = capacity_plan(report)
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / JSON_FILE).write_text(json.dumps(report, indent=2) + "\n")
    scale = write_section(docs_dir, markdown(report), SECTION)
    typer.echo(f"-> {scale}, {docs_dir / JSON_FILE}")


if __name__ == "__main__":
    app()
