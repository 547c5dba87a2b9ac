"""``reaseq gbr``: train the behaviour generator, generate users' blocks into a store, evaluate.

``train`` writes a checkpoint directory (config JSON + state_dict, version ``gbr-<hash>``);
``generate`` is the nearline job (all users, or with ``--incremental`` only those with new
events); ``evaluate`` prints the beyond-log metrics as JSON.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.options import (
    DEFAULT_BUNDLES,
    DEFAULT_DEMO_DIR,
    BundlesOpt,
    RedisClusterOpt,
    RedisUrlOpt,
    StoreKind,
    store_config,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from offline.data.canonical import Dataset
    from offline.data.synthetic import GroundTruth
    from offline.gbr.checkpoint import GBRModel
    from offline.gbr.generate import GenerationConfig
    from service.contracts.manifest import BundleManifest

gbr_app = typer.Typer(
    help="Generative behaviour reasoning: a diffusion model of beyond-log behaviours.",
    no_args_is_help=True,
)


# Mirrors of the offline enums (same values), so importing the command stays light.
class Tokens(StrEnum):
    items = "items"
    semantic = "semantic"


class Until(StrEnum):
    before_split = "split"
    everything = "all"


DataOpt = Annotated[Path, typer.Option(help="Dataset folder.")]
CheckpointOpt = Annotated[Path, typer.Option(help="GBR checkpoint folder.")]
KOpt = Annotated[int, typer.Option(min=1, help="Behaviours generated per user (K).")]
StepsOpt = Annotated[int, typer.Option(min=1, help="Unmasking steps (S).")]
TemperatureOpt = Annotated[float, typer.Option(min=0.0, help="Sampling temperature; 0 = greedy.")]
TopPOpt = Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus mass.")]
SeedOpt = Annotated[int, typer.Option(help="Seed.")]
ThreadsOpt = Annotated[int | None, typer.Option(help="PyTorch threads (default: PyTorch's).")]


def _setup(threads: int | None) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


LogWeightOpt = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="Weight of the co-occurrence of the generator's training logs in each block "
        "(0: the generator alone; item-token generators that kept their logs). Default: as "
        "the bundle's ranker was trained with.",
    ),
]


def generation_config(
    k: int,
    steps: int,
    temperature: float,
    top_p: float,
    seed: int,
    batch: int,
    beyond_slots: int = 0,
    log_weight: float = 0.0,
) -> GenerationConfig:
    """The generation options as a config; ``--beyond-slots`` beyond ``--k`` is refused."""
    if k < beyond_slots:
        raise typer.BadParameter(f"must lie in 0..k={k}", param_hint="--beyond-slots")
    from offline.gbr.generate import GenerationConfig

    return GenerationConfig(
        k=k,
        steps=steps,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        batch_size=batch,
        beyond_slots=beyond_slots,
        log_weight=log_weight,
    )


def check_blending(model: GBRModel, log_weight: float) -> None:
    """Refuse ``--log-weight`` above 0 for a generator that cannot blend."""
    if log_weight > 0 and (model.layout.kind != "items" or model.log_prior is None):
        raise typer.BadParameter(
            f"GBR {model.version} cannot blend with its training logs (it needs item tokens and "
            "a checkpoint that kept them: retrain it); use 0",
            param_hint="--log-weight",
        )


def block_settings(
    manifest: BundleManifest, beyond_slots: int | None, log_weight: float | None
) -> tuple[int, float]:
    """``--beyond-slots`` and ``--log-weight`` as given, else as the bundle's ranker was trained
    with (its manifest), else the generator alone (0, 0)."""
    generator = manifest.generator
    recorded = generator.blocks if generator is not None else None
    if beyond_slots is None:
        beyond_slots = recorded.beyond_slots if recorded is not None else 0
    if log_weight is None:
        log_weight = recorded.log_weight if recorded is not None else 0.0
    return beyond_slots, log_weight


def _semantic_vectors(dataset: Dataset, run: Path | None, seed: int) -> npt.NDArray[np.float32]:
    """The ranker run's semantic vectors when given (the same the ranker fuses), else the
    default knowledge encoding of the catalogue."""
    if run is not None:
        from model_export.pipeline import TrainingRun

        return TrainingRun.load(run).semantic_vectors
    from model_export.pipeline import encode_items

    return encode_items(dataset.catalogue, seed=seed).vectors


def _synthetic_truth(dataset: Dataset) -> GroundTruth | None:
    """The hidden world of a synthetic dataset, redrawn from the config its metadata records."""
    if dataset.meta.get("generator") != "synthetic":
        return None
    from offline.data.synthetic import SyntheticConfig, generate_with_truth

    settings = dict(dataset.meta["config"])
    settings["exposure_mix"] = tuple(settings["exposure_mix"])
    return generate_with_truth(SyntheticConfig(**settings), end_ts=dataset.meta["end_ts"])[1]


@gbr_app.command()
def train(
    data: DataOpt = DEFAULT_DEMO_DIR / "data",
    out: CheckpointOpt = DEFAULT_DEMO_DIR / "gbr",
    tokens: Annotated[Tokens, typer.Option(help="Item tokens or semantic IDs.")] = Tokens.items,
    until: Annotated[
        Until,
        typer.Option(help="split: events before the split (evaluation, ranker training); all."),
    ] = Until.before_split,
    epochs: Annotated[int, typer.Option(min=1)] = 8,
    semantic_run: Annotated[
        Path | None, typer.Option(help="Ranker run folder whose semantic vectors to use.")
    ] = None,
    seed: SeedOpt = 0,
    threads: ThreadsOpt = None,
) -> None:
    """Train the diffusion generator on users' behaviour sequences; write a checkpoint."""
    _setup(threads)
    from offline.data.canonical import Dataset
    from offline.gbr.train import GBRTrainConfig, train_gbr

    dataset = Dataset.load(data)
    semantic = _semantic_vectors(dataset, semantic_run, seed)
    config = GBRTrainConfig(tokens=tokens.value, epochs=epochs, seed=seed)
    until_ts = dataset.split_ts if until is Until.before_split else None
    model = train_gbr(dataset, semantic, config, until_ts=until_ts, progress=True)
    model.save(out)
    typer.echo(f"{model.version} ({model.train_info['train_seconds']} s) -> {out}")


@gbr_app.command()
def generate(
    data: DataOpt = DEFAULT_DEMO_DIR / "data",
    checkpoint: CheckpointOpt = DEFAULT_DEMO_DIR / "gbr",
    bundles: BundlesOpt = DEFAULT_BUNDLES,
    version: Annotated[str | None, typer.Option(help="Bundle (default: CURRENT).")] = None,
    store: Annotated[
        StoreKind, typer.Option(help="Where to write the blocks.")
    ] = StoreKind.embedded,
    users_path: Annotated[Path, typer.Option(help="Embedded snapshot file.")] = DEFAULT_DEMO_DIR
    / "users.npz",
    redis_url: RedisUrlOpt = "redis://127.0.0.1:6379/0",
    redis_cluster: RedisClusterOpt = False,
    ttl_s: Annotated[int, typer.Option(min=1, help="TTL of the Redis blocks.")] = 7 * 86_400,
    state: Annotated[Path, typer.Option(help="State file of incremental runs.")] = DEFAULT_DEMO_DIR
    / "gbr_state.npz",
    incremental: Annotated[
        bool, typer.Option(help="Only users with events since the last run.")
    ] = (False),
    k: KOpt = 16,
    steps: StepsOpt = 4,
    temperature: TemperatureOpt = 0.0,
    top_p: TopPOpt = 0.9,
    seed: SeedOpt = 0,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    beyond_slots: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Last slots of each block given to items beyond the history's main department, "
            "ranked by lift over their training share (item-token generators). Default: as the "
            "bundle's ranker was trained with.",
        ),
    ] = None,
    log_weight: LogWeightOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Generate users' blocks (the bundle's fused item vectors) into the embedded store or Redis."""
    _setup(threads)
    from offline.data.canonical import Dataset
    from offline.gbr.checkpoint import GBRModel
    from offline.gbr.nearline import run_nearline
    from service.bundles.loaded import load_item_table
    from service.contracts.bundle_root import current_bundle_dir
    from service.contracts.manifest import read_manifest

    model = GBRModel.load(checkpoint)
    if log_weight is not None:  # before the bundle is read: the option is the mistake
        check_blending(model, log_weight)
    bundle_dir = bundles / version if version else current_bundle_dir(bundles)
    manifest = read_manifest(bundle_dir)
    table = load_item_table(bundle_dir, manifest)
    slots, weight = block_settings(manifest, beyond_slots, log_weight)
    config = generation_config(k, steps, temperature, top_p, seed, batch_size, slots, weight)
    check_blending(model, config.log_weight)
    target = store_config(store, users_path, redis_url, redis_cluster)
    summary = run_nearline(
        model,
        Dataset.load(data),
        config,
        item_table=table,
        state_path=state,
        incremental=incremental,
        store=target,
        ttl_s=ttl_s,
        progress=True,
    )
    typer.echo(json.dumps(summary, indent=2))


@gbr_app.command()
def evaluate(
    data: DataOpt = DEFAULT_DEMO_DIR / "data",
    checkpoint: CheckpointOpt = DEFAULT_DEMO_DIR / "gbr",
    k: KOpt = 16,
    steps: StepsOpt = 4,
    temperature: TemperatureOpt = 0.0,
    top_p: TopPOpt = 0.9,
    seed: SeedOpt = 0,
    cost_users: Annotated[int, typer.Option(min=0, help="Users timed per (K, S); 0 = skip.")] = 500,
    log_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Weight of the co-occurrence of the generator's training logs in each block "
            "(0: the generator alone; item-token generators that kept their logs).",
        ),
    ] = 0.0,
    threads: ThreadsOpt = None,
) -> None:
    """Beyond-log recall@K against baselines, semantic consistency and cost, as JSON."""
    _setup(threads)
    from offline.data.canonical import Dataset
    from offline.gbr.checkpoint import GBRModel
    from offline.gbr.evaluate import evaluate_generator

    model = GBRModel.load(checkpoint)
    check_blending(model, log_weight)
    dataset = Dataset.load(data)
    report = evaluate_generator(
        model,
        dataset,
        generation=generation_config(
            k, steps, temperature, top_p, seed, 256, log_weight=log_weight
        ),
        truth=_synthetic_truth(dataset),
        cost_users=cost_users,
    )
    typer.echo(json.dumps(report, indent=2))
