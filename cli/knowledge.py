"""``reaseq knowledge``, ``reaseq encode`` and ``reaseq build``: the knowledge side of the command.

``build`` runs the whole offline path on any dataset (:func:`model_export.build.build`): a public
format loaded from a folder (or the synthetic generator) -> knowledge records from the agent team
(offline tables or an LLM, cached) -> semantic vectors from the chosen encoder -> the ranker and
its baselines -> a bundle named in ``bundles/CURRENT`` -> the users' sequences in the embedded
snapshot the bundle root names (or Redis), so that ``reaseq serve`` serves them.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli import options

if TYPE_CHECKING:
    from offline.data.canonical import Dataset
    from offline.encode import Vectors
    from offline.knowledge.schema import ItemKnowledge
    from service.contracts.manifest import TextEncoderInfo

DEFAULT_WORK = Path("var/build")


# A mirror of the offline enum (same values), so that importing the command for `reaseq serve`
# does not import the offline side.
class BackendKind(StrEnum):
    offline = "offline"
    llm = "llm"


class SourceFormat(StrEnum):
    synthetic = "synthetic"
    recbole = "recbole"
    movielens = "movielens"
    taobao = "taobao"
    amazon = "amazon"


FormatOpt = Annotated[SourceFormat, typer.Option("--format", help="Dataset format.")]
SourceOpt = Annotated[Path | None, typer.Option(help="Folder with the dataset's files.")]
SizeOpt = Annotated[options.Size, typer.Option(help="Synthetic preset.")]
BackendOpt = Annotated[BackendKind, typer.Option(help="Who answers the agents' prompts.")]
CacheOpt = Annotated[Path, typer.Option(help="SQLite cache of agent answers.")]
SampleUsersOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Load only this many users of a --source log, chosen by a hash of their ID keyed by "
        "the seed, while the file streams (a sample of a log too big to load whole).",
    ),
]
SinceOpt = Annotated[
    int | None, typer.Option(help="Load only interactions at or after this Unix time.")
]
UntilOpt = Annotated[int | None, typer.Option(help="Load only interactions before this Unix time.")]


def load_source(
    kind: SourceFormat,
    source: Path | None,
    *,
    size: options.Size = options.Size.tiny,
    seed: int = 0,
    click_threshold: float = 4.0,
    negatives: int = 4,
    split_quantile: float = 0.8,
    sample_users: int | None = None,
    since: int | None = None,
    until: int | None = None,
) -> Dataset:
    """The canonical dataset: generated, or loaded from ``source`` in format ``kind`` (sampled
    as ``sample_users``, ``since`` and ``until`` say; see ``LoaderConfig``)."""
    if kind is SourceFormat.synthetic:
        from offline.data.synthetic import SyntheticConfig, generate

        return generate(SyntheticConfig.preset(size.value, seed=seed))
    if source is None:
        raise typer.BadParameter(f"--source is required for --format {kind.value}")
    from offline.data.loaders import LoaderConfig, load_dataset

    try:
        config = LoaderConfig(
            click_threshold, negatives, split_quantile, seed,
            sample_users=sample_users, since=since, until=until,
        )  # fmt: skip
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return load_dataset(kind.value, source, config)


def knowledge(
    data: Annotated[Path | None, typer.Option(help="Canonical dataset folder.")] = None,
    kind: FormatOpt = SourceFormat.synthetic,
    source: SourceOpt = None,
    size: SizeOpt = options.Size.tiny,
    backend: BackendOpt = BackendKind.offline,
    cache: CacheOpt = DEFAULT_WORK / "knowledge.sqlite",
    out: Annotated[Path, typer.Option(help="Records, JSON Lines.")] = DEFAULT_WORK
    / "knowledge.jsonl",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    sample_users: SampleUsersOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Run the knowledge agents over a catalogue (cached); print the run report."""
    from offline.data.canonical import Dataset
    from offline.knowledge.runner import BackendKind as Backends
    from offline.knowledge.runner import describe_catalogue, write_records

    dataset = (
        Dataset.load(data)
        if data is not None
        else load_source(
            kind, source, size=size, sample_users=sample_users, since=since, until=until
        )
    )
    records, report = describe_catalogue(
        dataset.catalogue, Backends(backend.value), cache, progress=progress
    )
    write_records(records, out)
    typer.echo(report.model_dump_json(indent=2))
    typer.echo(f"{len(records)} records -> {out}", err=True)


def encode(
    records: Annotated[Path, typer.Option(help="Records from `reaseq knowledge`.")] = DEFAULT_WORK
    / "knowledge.jsonl",
    encoder: options.EncoderOpt = options.EncoderName.tfidf_svd,
    dim: options.DimOpt = 32,
    model_dir: options.ModelDirOpt = None,
    reduce: options.ReduceOpt = options.Reduction.truncate,
    seed: int = 0,
    out: Annotated[Path, typer.Option(help="Vectors file (.npz).")] = DEFAULT_WORK / "vectors.npz",
) -> None:
    """Encode knowledge records into unit-norm float32 vectors, saved with the encoder's name."""

    from offline.encode import encode_records
    from offline.knowledge.runner import read_records

    found = read_records(records)
    vectors, info = encode_records(
        found, options.encoder_choice(encoder, dim, seed, model_dir, reduce).build()
    )
    write_vectors(out, found, vectors, info)


def write_vectors(
    out: Path, records: list[ItemKnowledge], vectors: Vectors, info: TextEncoderInfo
) -> None:
    """The vectors file `reaseq encode` writes (the records' item IDs, float32 vectors, the
    encoder's info), and its line."""
    import numpy as np

    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        item_ids=np.array([r.item_id for r in records]),
        vectors=vectors.astype(np.float32),
        encoder=np.array(info.model_dump_json()),
    )
    typer.echo(
        f"{vectors.shape[0]} x {vectors.shape[1]} vectors ({info.name} {info.version}) -> {out}"
    )


def build(
    kind: FormatOpt = SourceFormat.synthetic,
    source: SourceOpt = None,
    size: SizeOpt = options.Size.tiny,
    backend: BackendOpt = BackendKind.offline,
    encoder: options.EncoderOpt = options.EncoderName.tfidf_svd,
    dim: options.DimOpt = 32,
    model_dir: options.ModelDirOpt = None,
    reduce: options.ReduceOpt = options.Reduction.truncate,
    epochs: Annotated[int, typer.Option(min=1)] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the data, the encoder and the run.")] = 0,
    threads: options.ThreadsOpt = None,
    fusion: options.FusionOpt = options.Fusion.sum,
    user_layers: options.UserLayersOpt = 0,
    click_threshold: Annotated[float, typer.Option(help="Ratings at or above: a click.")] = 4.0,
    negatives: Annotated[int, typer.Option(min=0, help="Sampled non-clicks per click.")] = 4,
    split_quantile: Annotated[float, typer.Option(help="Time split quantile.")] = 0.8,
    sample_users: SampleUsersOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    work: Annotated[
        Path, typer.Option(help="Folder for data, cache, records, run, user snapshot.")
    ] = DEFAULT_WORK,
    bundles: options.BundlesOpt = options.DEFAULT_BUNDLES,
    activate: options.ActivateOpt = True,
    store: Annotated[options.StoreKind, typer.Option(help="Where to publish users.")] = (
        options.StoreKind.embedded
    ),
    users_path: Annotated[
        Path | None, typer.Option(help="Embedded snapshot (default <work>/users.npz).")
    ] = None,
    redis_url: options.RedisUrlOpt = "redis://127.0.0.1:6379/0",
    redis_cluster: options.RedisClusterOpt = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = False,
) -> None:
    """Data -> knowledge -> encode -> train -> export -> publish users: a bundle from any
    supported dataset, served by the printed `reaseq serve` line."""
    from model_export.build import BuildSpec, UserPublishing, UserStore
    from model_export.build import build as build_bundle
    from model_export.train import GATED_DROPOUT_MAX_COUNT, TrainConfig
    from offline.knowledge.runner import BackendKind as Backends

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    dataset = load_source(
        kind, source, size=size, seed=seed, click_threshold=click_threshold,
        negatives=negatives, split_quantile=split_quantile, sample_users=sample_users,
        since=since, until=until,
    )  # fmt: skip
    spec = BuildSpec(
        work=work,
        bundles=bundles,
        encoder=options.encoder_choice(encoder, dim, seed, model_dir, reduce).build(),
        train=TrainConfig(
            epochs=epochs,
            seed=seed,
            threads=threads,
            progress=progress,
            fusion=fusion.value,
            dropout_max_count=GATED_DROPOUT_MAX_COUNT if fusion is options.Fusion.gate else None,
            user_layers=user_layers,
        ),
        backend=Backends(backend.value),
        users=UserPublishing(UserStore(store.value), users_path, redis_url, redis_cluster),
        activate=activate,
        progress=progress,
    )
    built = build_bundle(dataset, spec)
    typer.echo(f"knowledge: {built.knowledge_summary}")
    typer.echo(f"parity (max abs score difference): {built.parity:.2e}")
    metrics = {name: m.model_dump() for name, m in built.run.metrics.items()}
    typer.echo(json.dumps(metrics, indent=2))
    where = built.users_snapshot or redis_url
    typer.echo(f"users: {built.users} -> {where}")
    typer.echo(str(built.bundle))
    typer.echo(f"serve: {built.serve_command()}")


def register(app: typer.Typer) -> None:
    """Add the knowledge-side commands to the ``reaseq`` app."""
    app.command()(knowledge)
    app.command()(encode)
    app.command()(build)
