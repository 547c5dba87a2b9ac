"""The ``reaseq`` command: a thin layer over offline/, model_export/ and service/.

Heavy modules (NumPy, PyTorch, onnxruntime) are imported inside each command, so ``reaseq serve``
never loads PyTorch and can set thread limits before NumPy starts. A mistake (a wrong path, URL or
setting) ends any command with one line that says what to fix (:mod:`cli.errors`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from cli import knowledge as _knowledge_commands
from cli import openapi as _openapi_commands
from cli import results_real as _results_real_commands
from cli.errors import DEBUG_VARIABLE, ReaseqApp, enable_debug
from cli.experiment import experiment_app
from cli.gbr import gbr_app
from cli.options import (
    DEFAULT_BUNDLES,
    DEFAULT_DEMO_DIR,
    DEFAULT_EPOCHS,
    DEMO_GENERATED,
    ActivateOpt,
    BundlesOpt,
    DimOpt,
    EncoderName,
    EncoderOpt,
    Fusion,
    FusionOpt,
    ModelDirOpt,
    RedisClusterOpt,
    RedisUrlOpt,
    ReduceOpt,
    Reduction,
    Size,
    StoreKind,
    ThreadsOpt,
    UserLayersOpt,
    encoder_choice,
)
from cli.scale import scale_app
from service.contracts.bundle_root import activate as make_current
from service.contracts.bundle_root import current_bundle_dir, record_user_snapshot

app = ReaseqApp(
    help="ReaSeq ranking service: synthetic data, training, ONNX bundles, publishing, serving.",
    no_args_is_help=True,
    add_completion=False,
    # A mistake is one line (cli.errors); a bug keeps the plain traceback, not a 100-line panel.
    pretty_exceptions_enable=False,
)

HOUR = 3600

SeedOpt = Annotated[int, typer.Option(help="Seed of the data and the training run.")]


@app.callback()
def options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar=DEBUG_VARIABLE,
            help="Show the traceback of a mistake (a wrong path, URL or setting) instead of "
            "one line.",
        ),
    ] = False,
) -> None:
    enable_debug(debug)


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _recent_end_ts() -> int:
    """The demo's logs end at the last full hour, so time gaps at serving time look like the
    ones the ranker was trained on."""
    return int(time.time()) // HOUR * HOUR


@app.command()
def data(
    size: Annotated[Size, typer.Option(help="Preset size.")] = Size.demo,
    out: Annotated[Path, typer.Option(help="Dataset folder to write.")] = DEFAULT_DEMO_DIR / "data",
    seed: SeedOpt = 0,
    recent: Annotated[bool, typer.Option(help="End the logs now instead of a fixed date.")] = False,
) -> None:
    """Generate a synthetic catalogue and event logs in the canonical format."""
    from offline.data.synthetic import DEFAULT_END_TS, SyntheticConfig, generate

    end_ts = _recent_end_ts() if recent else DEFAULT_END_TS
    dataset = generate(SyntheticConfig.preset(size.value, seed=seed), end_ts=end_ts)
    dataset.save(out)
    typer.echo(
        f"{len(dataset.catalogue)} items, {len(dataset.user_ids)} users, "
        f"{len(dataset.impressions)} impressions, {len(dataset.behaviours)} behaviours -> {out}"
    )


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Dataset folder.")] = DEFAULT_DEMO_DIR / "data",
    out: Annotated[Path, typer.Option(help="Run folder to write.")] = DEFAULT_DEMO_DIR / "model",
    epochs: Annotated[int, typer.Option(min=1)] = DEFAULT_EPOCHS,
    seed: Annotated[int, typer.Option(help="Seed of the training run and the encoder.")] = 0,
    threads: ThreadsOpt = None,
    knowledge: Annotated[
        Path | None,
        typer.Option(
            help="Knowledge records to encode (a build's <work>/knowledge.jsonl); default: the "
            "offline tables' records of the catalogue."
        ),
    ] = None,
    encoder: EncoderOpt = EncoderName.tfidf_svd,
    dim: DimOpt = 32,
    model_dir: ModelDirOpt = None,
    reduce: ReduceOpt = Reduction.truncate,
    fusion: FusionOpt = Fusion.sum,
    user_layers: UserLayersOpt = 0,
) -> None:
    """Train the ranker and its ID-only baseline; evaluate both and random on the time split.

    To retrain a build's ranker, pass its records and the encoder options it was built with."""
    from model_export.pipeline import encode_items, encode_knowledge, train_run
    from model_export.train import GATED_DROPOUT_MAX_COUNT, TrainConfig
    from offline.data.canonical import Dataset
    from offline.knowledge.runner import read_records

    _logging()
    dataset = Dataset.load(data)
    choice = encoder_choice(encoder, dim, seed, model_dir, reduce)
    semantic = (
        encode_items(dataset.catalogue, encoder=choice)
        if knowledge is None
        else encode_knowledge(read_records(knowledge), dataset.catalogue, choice.build())
    )
    config = TrainConfig(
        epochs=epochs,
        seed=seed,
        threads=threads,
        fusion=fusion.value,
        dropout_max_count=GATED_DROPOUT_MAX_COUNT if fusion is Fusion.gate else None,
        user_layers=user_layers,
    )
    run = train_run(dataset, config, semantic=semantic)
    run.save(out)
    encoded = f"{run.encoder.name} {run.encoder.version}, {run.encoder.dim} dims"
    typer.echo(f"text encoder: {encoded}", err=True)
    typer.echo(json.dumps({k: v.model_dump() for k, v in run.metrics.items()}, indent=2))


@app.command()
def export(
    model: Annotated[Path, typer.Option(help="Run folder from `reaseq train`.")] = DEFAULT_DEMO_DIR
    / "model",
    data: Annotated[Path, typer.Option(help="Dataset folder.")] = DEFAULT_DEMO_DIR / "data",
    bundles: BundlesOpt = DEFAULT_BUNDLES,
    version: Annotated[str | None, typer.Option(help="Bundle version (default: dated)")] = None,
    activate: ActivateOpt = True,
) -> None:
    """Export a trained run as a bundle: ONNX graphs, item table, manifest with checksums."""
    from model_export.parity import check_parity
    from model_export.pipeline import TrainingRun, export_run
    from offline.data.canonical import Dataset

    _logging()
    path = export_run(TrainingRun.load(model), Dataset.load(data), bundles, version=version)
    typer.echo(f"parity (max abs score difference): {check_parity(path):.2e}")
    if activate:
        make_current(path)
    typer.echo(str(path))


@app.command()
def publish(
    data: Annotated[Path, typer.Option(help="Dataset folder.")] = DEFAULT_DEMO_DIR / "data",
    bundles: BundlesOpt = DEFAULT_BUNDLES,
    version: Annotated[str | None, typer.Option(help="Bundle (default: CURRENT).")] = None,
    store: Annotated[StoreKind, typer.Option(help="Where to publish.")] = StoreKind.embedded,
    redis_url: RedisUrlOpt = "redis://127.0.0.1:6379/0",
    redis_cluster: RedisClusterOpt = False,
    users_path: Annotated[Path, typer.Option(help="Embedded snapshot file.")] = DEFAULT_DEMO_DIR
    / "users.npz",
    activate: Annotated[
        bool, typer.Option(help="Redis: make it the active version (services follow it).")
    ] = True,
    gc_grace_s: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Redis: the keys of versions other than this one and the one active before "
            "expire after this many seconds; unset = keep every version.",
        ),
    ] = None,
    replace_sequences: Annotated[
        bool,
        typer.Option(
            help="Redis: overwrite users' live sequences from the dataset (a backfill); by "
            "default a user already in Redis keeps its sequence and the events appended to it."
        ),
    ] = False,
) -> None:
    """Publish users' sequences: to an embedded snapshot the bundle root then names for the bundle
    (served by default with it), or to Redis with the bundle's item vectors under its version,
    then flip the active version (with --gc-grace-s, older versions' keys then expire)."""
    from offline.data.canonical import Dataset
    from offline.publish.sequences import latest_sequences
    from offline.publish.stores import publish_embedded, publish_redis
    from service.contracts.manifest import read_manifest
    from service.stores.config import RedisStoreConfig

    bundle_dir = bundles / version if version else current_bundle_dir(bundles)
    max_len = read_manifest(bundle_dir).max_lengths.sequence
    sequences = latest_sequences(Dataset.load(data), max_len)
    if store is StoreKind.embedded:
        snapshot = publish_embedded(sequences, users_path)
        record_user_snapshot(bundle_dir, snapshot)
        typer.echo(f"{len(sequences)} users -> {snapshot} (named by {bundle_dir.name})")
    else:
        counts = publish_redis(
            sequences,
            bundle_dir,
            RedisStoreConfig(url=redis_url, cluster=redis_cluster),
            activate=activate,
            gc_grace_s=gc_grace_s,
            replace_sequences=replace_sequences,
        )
        expiring = f", {counts['expiring_keys']} old keys expiring" if gc_grace_s else ""
        kept = f" ({counts['kept_live_sequences']} kept their live sequence)"
        typer.echo(
            f"{counts['items']} items, {counts['users']} users{kept} -> {redis_url}{expiring}"
        )


@app.command()
def demo(
    size: Annotated[Size, typer.Option(help="Preset size.")] = Size.demo,
    bundles: BundlesOpt = DEFAULT_BUNDLES,
    out: Annotated[
        Path, typer.Option(help="Folder for data, generator, run and user store.")
    ] = DEFAULT_DEMO_DIR,
    epochs: Annotated[int, typer.Option(min=1)] = DEFAULT_EPOCHS,
    generated: Annotated[
        int,
        typer.Option(min=0, max=32, help="Generated behaviours per user (K); 0 = no generator."),
    ] = DEMO_GENERATED,
    gbr_epochs: Annotated[int, typer.Option(min=1, help="Epochs of the generator.")] = 2,
    seed: SeedOpt = 0,
) -> None:
    """Build the demo end to end: data -> knowledge vectors -> behaviour generator -> train ->
    bundle -> embedded store (users' sequences and generated behaviours)."""
    from model_export.pipeline import DEMO_VARIANTS, RANDOM, DemoSpec, build_demo

    _logging()
    started = time.perf_counter()
    spec = DemoSpec(size.value, bundles, out, epochs, generated, gbr_epochs, seed, _recent_end_ts())
    built = build_demo(spec)
    typer.echo(f"parity (max abs score difference): {built.parity:.2e}")
    if built.nearline is not None:
        summary = built.nearline
        typer.echo(
            f"generated behaviours: {summary['blocks_written']} users ({summary['gbr_version']})"
        )
    for name in (*DEMO_VARIANTS, RANDOM):
        if name in built.metrics:
            m = built.metrics[name]
            typer.echo(f"{name:>8}: AUC {m.auc:.4f}  GAUC {m.gauc:.4f}  logloss {m.logloss:.4f}")
    typer.echo(f"demo bundle {built.path.name} ready in {time.perf_counter() - started:.0f} s")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: REASEQ_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="Default: REASEQ_PORT or 8000")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Default: REASEQ_WORKERS, or one per usable core (one on the device path or "
            "with the admin endpoints on)",
        ),
    ] = None,
) -> None:
    """Serve /v1/rank with settings from REASEQ_* environment variables."""
    from service.threads import limit_blas_threads

    limit_blas_threads()
    from service.app import serve as run_service
    from service.settings import Settings

    chosen = {"host": host, "port": port, "workers": workers}
    overrides = {k: v for k, v in chosen.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.store != "redis" or settings.bundle_version is not None:
        # No bundle is a mistake to name now, not a traceback from the server's start-up; with
        # Redis the active version may come from the store, which only the service reads.
        settings.resolve_bundle_dir()
    run_service(settings)


@app.command()
def results(
    size: Annotated[Size, typer.Option(help="Preset size.")] = Size.demo,
    seeds: Annotated[int, typer.Option(min=1, help="Number of seeds (0..n-1).")] = 3,
    docs: Annotated[Path, typer.Option(help="Folder for RESULTS.md and results.json.")] = Path(
        "docs"
    ),
    exploration_aim: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of the world's exploration slots aimed at the kinds complementing the "
            "user's primary kind (0: uniform exploration, as the recorded results).",
        ),
    ] = 0.0,
    secondary_weight: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Strength of each user's secondary interest against the primary's 1 (the "
            "recorded results: 1.5).",
        ),
    ] = 1.5,
    co_interest: Annotated[
        bool,
        typer.Option(
            "--co-interest/--no-co-interest",
            help="A world whose secondary interests follow one pattern per primary kind, which "
            "only shoppers' behaviour reveals (the recorded results: on); off, each user's "
            "secondary kind is drawn for that user.",
        ),
    ] = True,
    kind_focus: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of the slots drawn from the user's primary department that show the "
            "primary kind itself (the recorded results: 0.5; 0: the whole department).",
        ),
    ] = 0.5,
    complement_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of users whose secondary kind follows their primary kind: its "
            "co-interest kind (with --co-interest), else one of its complements; the rest draw "
            "a kind of another department each (the recorded results: 0.7).",
        ),
    ] = 0.7,
    slot_vectors: Annotated[
        bool,
        typer.Option(
            "--slot-vectors/--no-slot-vectors",
            help="Rankers with generated blocks learn a vector per slot of the block, so they "
            "can trust the generator's slots unequally (the recorded results: on).",
        ),
    ] = True,
) -> None:
    """Regenerate docs/RESULTS.md and docs/results.json: the ranker's ablation (ID only,
    + knowledge, + GBR, full) and the behaviour generator against its baselines, with its cost."""
    from model_export.report import ResultsSpec, write_results
    from model_export.world_ablation import WorldSetup

    _logging()
    world = WorldSetup(
        exploration_aim=exploration_aim,
        secondary_weight=secondary_weight,
        co_interest=co_interest,
        kind_focus=kind_focus,
        complement_share=complement_share,
    )
    spec = ResultsSpec(size=size.value, seeds=tuple(range(seeds)), world=world)
    if not slot_vectors:
        spec = replace(spec, ranker=replace(spec.ranker, generated_slots=0))
    document = write_results(spec, docs)
    typer.echo(json.dumps(document["summary"], indent=2))


@app.command("example-request")
def example_request(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Print an example /v1/rank call for the demo bundle: user u1, candidates i1..i500."""
    candidates = "$(seq -s, -f '\"i%g\"' 1 500)"
    body = f'{{\\"user_id\\": \\"u1\\", \\"top_k\\": 5, \\"candidates\\": [{candidates}]}}'
    typer.echo("Once the service is up, rank 500 candidates for user u1:")
    typer.echo(
        f"  curl -s http://{host}:{port}/v1/rank -H 'content-type: application/json' -d \"{body}\""
    )
    typer.echo(f"OpenAPI docs: http://{host}:{port}/docs")


_knowledge_commands.register(app)
_openapi_commands.register(app)
_results_real_commands.register(app)
app.add_typer(gbr_app, name="gbr")
app.add_typer(experiment_app, name="experiment")
app.add_typer(scale_app, name="scale")

if __name__ == "__main__":
    app()
