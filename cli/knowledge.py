"""``reaseq knowledge``, ``reaseq encode`` and ``reaseq build``: the knowledge side of the command.

``build`` runs the whole offline path on any dataset: a public format loaded from a folder (or the
synthetic generator) -> knowledge records from the agent team (offline tables or an LLM, cached)
-> semantic vectors from the chosen encoder -> the ranker and its baselines -> a bundle the
service loads, named in ``bundles/CURRENT``.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from offline.data.canonical import Dataset
    from offline.encode.base import TextEncoder

CURRENT_FILE = "CURRENT"
DEFAULT_WORK = Path("var/build")


# Mirrors of the offline enums (same values), so that importing the command for `reaseq serve`
# does not import the offline side.
class BackendKind(StrEnum):
    offline = "offline"
    llm = "llm"


class EncoderName(StrEnum):
    tfidf_svd = "tfidf-svd"
    sentence_transformers = "sentence-transformers"
    openai_embeddings = "openai-embeddings"


class SourceFormat(StrEnum):
    synthetic = "synthetic"
    recbole = "recbole"
    movielens = "movielens"
    taobao = "taobao"
    amazon = "amazon"


FormatOpt = Annotated[SourceFormat, typer.Option("--format", help="Dataset format.")]
SourceOpt = Annotated[Path | None, typer.Option(help="Folder with the dataset's files.")]
SizeOpt = Annotated[str, typer.Option(help="Synthetic preset (tiny, small, demo, large).")]
BackendOpt = Annotated[BackendKind, typer.Option(help="Who answers the agents' prompts.")]
CacheOpt = Annotated[Path, typer.Option(help="SQLite cache of agent answers.")]
EncoderOpt = Annotated[EncoderName, typer.Option(help="Text encoder.")]
DimOpt = Annotated[int, typer.Option(min=1, help="Width of the semantic vectors.")]
ModelDirOpt = Annotated[
    Path | None, typer.Option(help="Local model folder (sentence-transformers).")
]
ReduceOpt = Annotated[str, typer.Option(help="truncate or project to the width.")]


def load_source(
    kind: SourceFormat,
    source: Path | None,
    *,
    size: str = "tiny",
    seed: int = 0,
    click_threshold: float = 4.0,
    negatives: int = 4,
    split_quantile: float = 0.8,
) -> Dataset:
    """The canonical dataset: generated, or loaded from ``source`` in format ``kind``."""
    if kind is SourceFormat.synthetic:
        from offline.data.synthetic import SyntheticConfig, generate

        return generate(SyntheticConfig.preset(size, seed=seed))
    if source is None:
        raise typer.BadParameter(f"--source is required for --format {kind.value}")
    from offline.data.loaders import LoaderConfig, load_dataset

    config = LoaderConfig(click_threshold, negatives, split_quantile, seed)
    return load_dataset(kind.value, source, config)


def _encoder(
    name: EncoderName, dim: int, seed: int, model_dir: Path | None, reduce: str
) -> TextEncoder:
    from offline.encode.choice import EncoderChoice
    from offline.encode.choice import EncoderName as Encoders

    if reduce not in ("truncate", "project"):
        raise typer.BadParameter("--reduce must be truncate or project")
    choice = EncoderChoice(Encoders(name.value), dim, seed, model_dir, reduce)  # type: ignore[arg-type]
    return choice.build()


def knowledge(
    data: Annotated[Path | None, typer.Option(help="Canonical dataset folder.")] = None,
    kind: FormatOpt = SourceFormat.synthetic,
    source: SourceOpt = None,
    size: SizeOpt = "tiny",
    backend: BackendOpt = BackendKind.offline,
    cache: CacheOpt = DEFAULT_WORK / "knowledge.sqlite",
    out: Annotated[Path, typer.Option(help="Records, JSON Lines.")] = DEFAULT_WORK
    / "knowledge.jsonl",
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run the knowledge agents over a catalogue (cached); print the run report."""
    from offline.data.canonical import Dataset
    from offline.knowledge.runner import BackendKind as Backends
    from offline.knowledge.runner import describe_catalogue, write_records

    dataset = Dataset.load(data) if data is not None else load_source(kind, source, size=size)
    records, report = describe_catalogue(
        dataset.catalogue, Backends(backend.value), cache, progress=progress
    )
    write_records(records, out)
    typer.echo(report.model_dump_json(indent=2))
    typer.echo(f"{len(records)} records -> {out}", err=True)


def encode(
    records: Annotated[Path, typer.Option(help="Records from `reaseq knowledge`.")] = DEFAULT_WORK
    / "knowledge.jsonl",
    encoder: EncoderOpt = EncoderName.tfidf_svd,
    dim: DimOpt = 32,
    model_dir: ModelDirOpt = None,
    reduce: ReduceOpt = "truncate",
    seed: int = 0,
    out: Annotated[Path, typer.Option(help="Vectors file (.npz).")] = DEFAULT_WORK / "vectors.npz",
) -> None:
    """Encode knowledge records into unit-norm float32 vectors, saved with the encoder's name."""
    import numpy as np

    from offline.encode import encode_records
    from offline.knowledge.runner import read_records

    found = read_records(records)
    vectors, info = encode_records(found, _encoder(encoder, dim, seed, model_dir, reduce))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        item_ids=np.array([r.item_id for r in found]),
        vectors=vectors.astype(np.float32),
        encoder=np.array(info.model_dump_json()),
    )
    typer.echo(
        f"{vectors.shape[0]} x {vectors.shape[1]} vectors ({info.name} {info.version}) -> {out}"
    )


def build(
    kind: FormatOpt = SourceFormat.synthetic,
    source: SourceOpt = None,
    size: SizeOpt = "tiny",
    backend: BackendOpt = BackendKind.offline,
    encoder: EncoderOpt = EncoderName.tfidf_svd,
    dim: DimOpt = 32,
    model_dir: ModelDirOpt = None,
    reduce: ReduceOpt = "truncate",
    epochs: Annotated[int, typer.Option(min=1)] = 2,
    seed: int = 0,
    click_threshold: Annotated[float, typer.Option(help="Ratings at or above: a click.")] = 4.0,
    negatives: Annotated[int, typer.Option(min=0, help="Sampled non-clicks per click.")] = 4,
    split_quantile: Annotated[float, typer.Option(help="Time split quantile.")] = 0.8,
    work: Annotated[
        Path, typer.Option(help="Folder for data, cache, records, run.")
    ] = DEFAULT_WORK,
    bundles: Annotated[Path, typer.Option(help="Root folder of the bundles.")] = Path("bundles"),
    activate: Annotated[bool, typer.Option(help="Point bundles/CURRENT at it.")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = False,
) -> None:
    """Data -> knowledge -> encode -> train -> export: a bundle from any supported dataset."""
    from model_export.parity import check_parity
    from model_export.pipeline import encode_knowledge, export_run, train_run
    from model_export.train import TrainConfig
    from offline.knowledge.runner import BackendKind as Backends
    from offline.knowledge.runner import describe_catalogue, write_records

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    dataset = load_source(
        kind, source, size=size, seed=seed, click_threshold=click_threshold,
        negatives=negatives, split_quantile=split_quantile,
    )  # fmt: skip
    dataset.save(work / "data")
    records, report = describe_catalogue(
        dataset.catalogue, Backends(backend.value), work / "knowledge.sqlite", progress=progress
    )
    write_records(records, work / "knowledge.jsonl")
    typer.echo(f"knowledge: {report.summary()}")
    semantic = encode_knowledge(
        records, dataset.catalogue, _encoder(encoder, dim, seed, model_dir, reduce)
    )
    run = train_run(
        dataset, TrainConfig(epochs=epochs, seed=seed, progress=progress), semantic=semantic
    )
    run.save(work / "model")
    path = export_run(run, dataset, bundles)
    typer.echo(f"parity (max abs score difference): {check_parity(path):.2e}")
    if activate:
        (bundles / CURRENT_FILE).write_text(path.name + "\n")
    typer.echo(json.dumps({name: m.model_dump() for name, m in run.metrics.items()}, indent=2))
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add the knowledge-side commands to the ``reaseq`` app."""
    app.command()(knowledge)
    app.command()(encode)
    app.command()(build)
