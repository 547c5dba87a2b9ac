"""``reaseq scale``: the offline and nearline pipelines on Ray (:mod:`offline.scale`).

Each command is its single-process counterpart spread over Ray workers, with the same results:
``knowledge`` (``reaseq knowledge``), ``encode`` (``reaseq encode``), ``publish`` (``reaseq
publish`` to Redis) and ``nearline`` (``reaseq gbr generate``, incremental or not, or every
active user's blocks into a file with ``--out``). With ``--ray-address`` (or
``RAY_ADDRESS``, as a KubeRay RayJob sets it) they run on that cluster, else on a local Ray.

Ray Data comes with the ``scale`` extra and is imported only inside the commands, so the rest of
``reaseq`` (``serve`` above all) never loads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli import options
from cli.gbr import (
    KOpt,
    LogWeightOpt,
    SeedOpt,
    StepsOpt,
    TemperatureOpt,
    TopPOpt,
    block_settings,
    check_blending,
    generation_config,
)
from cli.knowledge import (
    DEFAULT_WORK,
    BackendKind,
    BackendOpt,
    CacheOpt,
    SourceFormat,
    write_vectors,
)
from service.settings_errors import MISTAKE_EXIT

if TYPE_CHECKING:
    from offline.data.canonical import Dataset
    from offline.gbr.checkpoint import GBRModel
    from offline.gbr.generate import GenerationConfig
    from offline.scale.session import WorkerPool
    from service.bundles.loaded import ItemTable
    from service.contracts.manifest import BundleManifest

#: What to run when Ray Data is missing.
INSTALL_HINT = "install the scale extra: pip install -e '.[scale]'"

scale_app = typer.Typer(
    help="The offline and nearline pipelines on Ray Data (the scale extra).",
    no_args_is_help=True,
)

RayAddressOpt = Annotated[
    str | None,
    typer.Option(help="Ray cluster to run on (default: RAY_ADDRESS, else a local Ray)."),
]
NumCpusOpt = Annotated[
    int | None, typer.Option(min=1, help="CPUs of a local Ray (default: all of this machine's).")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        min=1, help="Workers per stage (default: one per CPU, or per GPU share, of the cluster)."
    ),
]
GpusOpt = Annotated[
    float, typer.Option(min=0.0, help="GPUs each worker reserves (0: CPU workers).")
]
ShardUsersOpt = Annotated[int, typer.Option(min=1, help="Users per shard (one worker call).")]
ShardItemsOpt = Annotated[int, typer.Option(min=1, help="Items per shard (one worker call).")]
DataOpt = Annotated[Path, typer.Option(help="Dataset folder.")]
CheckpointOpt = Annotated[Path, typer.Option(help="GBR checkpoint folder.")]
BatchSizeOpt = Annotated[int, typer.Option(min=1, help="Users per generation batch.")]
BeyondSlotsOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Last slots of each block given to items beyond the history's main department "
        "(as `reaseq gbr generate --beyond-slots`; default: as the bundle's ranker was trained).",
    ),
]
VersionOpt = Annotated[str | None, typer.Option(help="Bundle (default: CURRENT).")]


def _require_ray() -> None:
    """Stop with one line when Ray Data is not installed."""
    try:
        import ray.data  # noqa: F401
    except ImportError as error:
        typer.echo(f"error: Ray Data is not installed ({error}); {INSTALL_HINT}", err=True)
        raise typer.Exit(MISTAKE_EXIT) from None


@contextmanager
def _on_ray(address: str | None, num_cpus: int | None) -> Iterator[None]:
    _require_ray()
    from offline.scale.session import RayOptions, RayUnavailable, ray_session

    try:
        with ray_session(RayOptions(address, num_cpus)):
            yield
    except RayUnavailable as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(MISTAKE_EXIT) from None


def _pool(workers: int | None, shard_rows: int, gpus: float = 0.0) -> WorkerPool:
    from offline.scale.session import WorkerPool

    return WorkerPool(workers=workers, shard_rows=shard_rows, gpus_per_worker=gpus)


def _bundle(bundles: Path, version: str | None) -> tuple[ItemTable, BundleManifest]:
    """The bundle's item table and manifest."""
    from service.bundles.loaded import load_item_table
    from service.contracts.bundle_root import current_bundle_dir
    from service.contracts.manifest import read_manifest

    bundle_dir = bundles / version if version else current_bundle_dir(bundles)
    manifest = read_manifest(bundle_dir)
    return load_item_table(bundle_dir, manifest), manifest


@scale_app.command()
def knowledge(
    data: Annotated[Path | None, typer.Option(help="Dataset folder (default: synthetic).")] = None,
    size: Annotated[options.Size, typer.Option(help="Synthetic preset.")] = options.Size.tiny,
    backend: BackendOpt = BackendKind.offline,
    cache: CacheOpt = DEFAULT_WORK / "knowledge.sqlite",
    out: Annotated[Path, typer.Option(help="Records, JSON Lines.")] = DEFAULT_WORK
    / "knowledge.jsonl",
    requests_per_s: Annotated[
        float | None, typer.Option(min=0.001, help="LLM calls started per second, all workers.")
    ] = None,
    shard_items: ShardItemsOpt = 4096,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    num_cpus: NumCpusOpt = None,
) -> None:
    """`reaseq knowledge` on Ray: the same records, in catalogue order; print the run report."""
    _require_ray()
    from cli.knowledge import load_source
    from offline.data.canonical import Dataset
    from offline.knowledge.runner import BackendKind as Backends

    dataset = (
        Dataset.load(data)
        if data is not None
        else load_source(SourceFormat.synthetic, None, size=size)
    )
    with _on_ray(ray_address, num_cpus):
        from offline.scale.knowledge import describe_lines_ray

        lines, report = describe_lines_ray(
            dataset.catalogue,
            Backends(backend.value),
            cache,
            pool=_pool(workers, shard_items),
            requests_per_s=requests_per_s,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    typer.echo(report.model_dump_json(indent=2))
    typer.echo(f"{len(lines)} records -> {out}", err=True)


@scale_app.command()
def encode(
    records: Annotated[Path, typer.Option(help="Records from `reaseq scale knowledge`.")] = (
        DEFAULT_WORK / "knowledge.jsonl"
    ),
    encoder: options.EncoderOpt = options.EncoderName.tfidf_svd,
    dim: options.DimOpt = 32,
    model_dir: options.ModelDirOpt = None,
    reduce: options.ReduceOpt = options.Reduction.truncate,
    seed: int = 0,
    out: Annotated[Path, typer.Option(help="Vectors file (.npz).")] = DEFAULT_WORK / "vectors.npz",
    shard_texts: Annotated[int, typer.Option(min=1, help="Texts per shard.")] = 4096,
    workers: WorkersOpt = None,
    gpus_per_worker: GpusOpt = 0.0,
    ray_address: RayAddressOpt = None,
    num_cpus: NumCpusOpt = None,
) -> None:
    """`reaseq encode` on Ray: the encoder fitted once, texts encoded by the workers."""
    _require_ray()

    from offline.knowledge.runner import read_records

    found = read_records(records)
    choice = options.encoder_choice(encoder, dim, seed, model_dir, reduce).build()
    with _on_ray(ray_address, num_cpus):
        from offline.scale.encode import encode_records_ray

        pool = _pool(workers, shard_texts, gpus_per_worker)
        vectors, info = encode_records_ray(found, choice, pool)
    write_vectors(out, found, vectors, info)


@scale_app.command()
def publish(
    data: DataOpt = options.DEFAULT_DEMO_DIR / "data",
    bundles: options.BundlesOpt = options.DEFAULT_BUNDLES,
    version: VersionOpt = None,
    redis_url: options.RedisUrlOpt = "redis://127.0.0.1:6379/0",
    redis_cluster: options.RedisClusterOpt = False,
    activate: Annotated[bool, typer.Option(help="Make it the active version.")] = True,
    gc_grace_s: Annotated[
        int | None,
        typer.Option(min=1, help="Other versions' keys (but the previous) expire after this."),
    ] = None,
    replace_sequences: Annotated[
        bool, typer.Option(help="Overwrite users' live sequences from the dataset (a backfill).")
    ] = False,
    shard_users: ShardUsersOpt = 4096,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    num_cpus: NumCpusOpt = None,
) -> None:
    """`reaseq publish --store redis` on Ray: item vectors and users' sequences written by the
    workers in shards, then the active version flipped once."""
    _require_ray()
    from offline.data.canonical import Dataset
    from offline.publish.sequences import latest_sequences
    from offline.publish.stores import publish_redis
    from offline.scale.publish import check_reachable, ray_writes
    from service.contracts.bundle_root import current_bundle_dir
    from service.contracts.manifest import read_manifest
    from service.stores.config import RedisStoreConfig

    bundle_dir = bundles / version if version else current_bundle_dir(bundles)
    max_len = read_manifest(bundle_dir).max_lengths.sequence
    sequences = latest_sequences(Dataset.load(data), max_len)
    store = RedisStoreConfig(url=redis_url, cluster=redis_cluster)
    check_reachable(store)  # before Ray starts: a wrong URL is one line
    with _on_ray(ray_address, num_cpus):
        counts = publish_redis(
            sequences,
            bundle_dir,
            store,
            activate=activate,
            gc_grace_s=gc_grace_s,
            replace_sequences=replace_sequences,
            writes=ray_writes(store, _pool(workers, shard_users)),
        )
    typer.echo(json.dumps(counts))


@scale_app.command()
def nearline(
    data: DataOpt = options.DEFAULT_DEMO_DIR / "data",
    checkpoint: CheckpointOpt = options.DEFAULT_DEMO_DIR / "gbr",
    bundles: options.BundlesOpt = options.DEFAULT_BUNDLES,
    version: VersionOpt = None,
    store: Annotated[
        options.StoreKind, typer.Option(help="Where to write the blocks.")
    ] = options.StoreKind.embedded,
    redis_url: options.RedisUrlOpt = "redis://127.0.0.1:6379/0",
    redis_cluster: options.RedisClusterOpt = False,
    users_path: Annotated[Path, typer.Option(help="Embedded snapshot file.")] = (
        options.DEFAULT_DEMO_DIR / "users.npz"
    ),
    state: Annotated[Path, typer.Option(help="State file of incremental runs.")] = (
        options.DEFAULT_DEMO_DIR / "gbr_state.npz"
    ),
    incremental: Annotated[
        bool, typer.Option(help="Only users with events since the last run.")
    ] = False,
    ttl_s: Annotated[int, typer.Option(min=1, help="TTL of the Redis blocks.")] = 7 * 86_400,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write every active user's blocks to this .npz file instead of a store (user "
            "IDs, catalogue rows, -1: none, vectors, confidences, GBR version); no state saved."
        ),
    ] = None,
    k: KOpt = 16,
    steps: StepsOpt = 4,
    temperature: TemperatureOpt = 0.0,
    top_p: TopPOpt = 0.9,
    seed: SeedOpt = 0,
    batch_size: BatchSizeOpt = 256,
    beyond_slots: BeyondSlotsOpt = None,
    log_weight: LogWeightOpt = None,
    shard_users: ShardUsersOpt = 4096,
    gpus_per_worker: GpusOpt = 0.0,
    workers: WorkersOpt = None,
    ray_address: RayAddressOpt = None,
    num_cpus: NumCpusOpt = None,
) -> None:
    """`reaseq gbr generate` on Ray: select users (with --incremental, only those with events
    since the last run), generate and write their blocks, save the state; print a JSON summary.
    With --out, every active user's blocks go to a file instead."""
    _require_ray()
    from offline.data.canonical import Dataset
    from offline.gbr.checkpoint import GBRModel
    from service.stores.config import RedisStoreConfig

    if out is not None and incremental:
        raise typer.BadParameter("writes every active user's blocks: drop one", param_hint="--out")
    if out is None and store is options.StoreKind.embedded and not users_path.is_file():
        raise FileNotFoundError(2, "publish the users' sequences before their blocks", users_path)
    dataset, model = Dataset.load(data), GBRModel.load(checkpoint)
    if log_weight is not None:
        check_blending(model, log_weight)
    table, manifest = _bundle(bundles, version)
    slots, weight = block_settings(manifest, beyond_slots, log_weight)
    config = generation_config(k, steps, temperature, top_p, seed, batch_size, slots, weight)
    check_blending(model, config.log_weight)
    pool = _pool(workers, shard_users, gpus_per_worker)
    if out is not None:
        with _on_ray(ray_address, num_cpus):
            _blocks_to_file(model, dataset, config, table, pool, out)
        return
    target = options.store_config(store, users_path, redis_url, redis_cluster)
    if isinstance(target, RedisStoreConfig):
        from offline.scale.publish import check_reachable

        check_reachable(target)  # before Ray starts: a wrong URL is one line
    with _on_ray(ray_address, num_cpus):
        from offline.gbr.nearline import run_nearline
        from offline.scale.nearline import ray_block_writer

        writer = ray_block_writer(model, dataset, config, table, target, ttl_s, pool)
        summary = run_nearline(
            model, dataset, config, item_table=table, store=target, write_blocks=writer,
            state_path=state, incremental=incremental, ttl_s=ttl_s,
        )  # fmt: skip
    typer.echo(json.dumps(summary, indent=2))


def _blocks_to_file(
    model: GBRModel,
    dataset: Dataset,
    config: GenerationConfig,
    table: ItemTable,
    pool: WorkerPool,
    out: Path,
) -> None:
    import numpy as np

    from offline.gbr.nearline import latest_event_ts
    from offline.scale.generate import generate_users_ray

    users = np.flatnonzero(latest_event_ts(dataset) >= 0)
    generated = generate_users_ray(model, dataset, users, config, table, pool=pool)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        user_ids=generated.user_ids,
        item_idx=generated.item_idx,
        vectors=generated.vectors,
        confidence=generated.confidence,
        gbr_version=np.array(generated.gbr_version),
    )
    typer.echo(f"{len(generated)} users' blocks ({generated.gbr_version}) -> {out}")
