"""``reaseq experiment``: read an experiment's prediction log (report), compare its arms'
bundles offline (replay), and run a simulated experiment through the service (simulate).

The pipelines live in :mod:`offline.experiments` and :mod:`model_export`; this module parses the
options and prints.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.options import DEFAULT_BUNDLES, BundlesOpt, Size, redis_url_option

if TYPE_CHECKING:
    from offline.experiments import ExperimentReport, JoinedLog, ReadCounts

experiment_app = typer.Typer(
    help="Experiments: per-arm report of a prediction log, offline replay, simulated run.",
    no_args_is_help=True,
)


def _optional_redis_url(url: str | None) -> str | None:
    return None if url is None else redis_url_option(url)


LogOpt = Annotated[
    Path | None,
    typer.Option(
        "--log",
        file_okay=False,
        help="Folder of the prediction log files (the service's REASEQ_PREDICTION_LOG_DIR).",
    ),
]
RedisOpt = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        callback=_optional_redis_url,
        help="Redis whose prediction stream to read, instead of --log.",
    ),
]
ExperimentOpt = Annotated[
    str | None, typer.Option(help="The experiment to report (needed when the log has several).")
]
ControlOpt = Annotated[
    str | None,
    typer.Option(help="The control arm; default: an arm named control, else the first logged."),
]
ReplicatesOpt = Annotated[int, typer.Option(min=100, help="Bootstrap replicates.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _read(log: Path | None, redis_url: str | None) -> tuple[JoinedLog, ReadCounts]:
    """The joined log from exactly one of the two sources."""
    from offline.experiments import PredictionLogError, ReadCounts, join, read_folder, read_stream

    if (log is None) == (redis_url is None):
        raise _fail("name the prediction log with exactly one of --log DIR or --redis-url URL")
    counts = ReadCounts()
    try:
        records = (
            read_folder(log, counts) if log is not None else read_stream(str(redis_url), counts)
        )
        return join(records), counts
    except PredictionLogError as error:
        raise _fail(str(error)) from None


def _report(joined: JoinedLog, counts: ReadCounts, **settings: object) -> ExperimentReport:
    from offline.experiments import PredictionLogError, ReportSettings, experiment_report

    try:
        return experiment_report(joined, ReportSettings(**settings), counts)  # type: ignore[arg-type]
    except PredictionLogError as error:
        raise _fail(str(error)) from None


@experiment_app.command()
def report(
    log: LogOpt = None,
    redis_url: RedisOpt = None,
    out: Annotated[Path | None, typer.Option(help="Folder for report.json and ctr.png.")] = None,
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the tables and findings as Markdown here.")
    ] = None,
    experiment: ExperimentOpt = None,
    control: ControlOpt = None,
    version: Annotated[
        int | None,
        typer.Option(help="Only this version of the experiment (default: every one, pooled)."),
    ] = None,
    positions: Annotated[
        int, typer.Option(min=1, max=50, help="Positions of CTR by position.")
    ] = 5,
    replicates: ReplicatesOpt = 1000,
    seed: SeedOpt = 0,
) -> None:
    """Per-arm results of an experiment with 95% intervals (bootstrap over users), each arm
    against the control, and shadow arms' agreement with the arm that served."""
    from offline.experiments import findings, table_lines

    joined, counts = _read(log, redis_url)
    found = _report(
        joined,
        counts,
        experiment=experiment,
        version=version,
        control=control,
        positions=positions,
        replicates=replicates,
        seed=seed,
    )
    lines = [*table_lines(found), "", *findings(found)]
    typer.echo(f"experiment {found.experiment}, control {found.control}")
    typer.echo("\n".join(lines))
    typer.echo(json.dumps(found.counts), err=True)
    if out is not None:
        from offline.experiments.plot import plot_report

        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(found.as_dict(), indent=2) + "\n")
        plot_report(found, out / "ctr.png")
        typer.echo(f"-> {out / 'report.json'}, {out / 'ctr.png'}", err=True)
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(f"# Experiment {found.experiment}\n\n" + "\n".join(lines) + "\n")


def _arms(joined: JoinedLog, named: list[str] | None, bundles: Path) -> dict[str, Path]:
    """Arm name -> bundle folder: as named (``name=version``), else as the log records them."""
    versions: dict[str, str] = {}
    if named:
        for pair in named:
            name, _, version = pair.partition("=")
            if not name or not version:
                raise _fail(f"--arm {pair!r}: write it as NAME=BUNDLE_VERSION")
            versions[name] = version
    else:
        versions = joined.arm_bundles()
    if not versions:
        raise _fail("the log names no arm; name the bundles with --arm NAME=BUNDLE_VERSION")
    missing = [v for v in versions.values() if not (bundles / v).is_dir()]
    if missing:
        raise _fail(f"no bundle {missing[0]} under {bundles}; check --bundles and --arm")
    return {name: bundles / version for name, version in versions.items()}


@experiment_app.command()
def replay(
    data: Annotated[
        Path,
        typer.Option(
            exists=True, file_okay=False, help="Dataset folder the arms' bundles were trained on."
        ),
    ],
    log: LogOpt = None,
    redis_url: RedisOpt = None,
    bundles: BundlesOpt = DEFAULT_BUNDLES,
    arm: Annotated[
        list[str] | None,
        typer.Option(help="NAME=BUNDLE_VERSION (repeatable); default: the log's arms."),
    ] = None,
    as_of: Annotated[
        int | None,
        typer.Option(help="Score logged answers as of this Unix time (default: each one's)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for replay.json.")] = None,
) -> None:
    """Every arm's bundle on (a) the dataset's evaluation set and (b) the logged answers that
    have outcomes (biased towards the arm that served them)."""
    from model_export.experiment_replay import ReplayArm, replay_lines
    from model_export.experiment_replay import replay as run_replay
    from offline.data.canonical import Dataset

    joined, _ = _read(log, redis_url)
    arms = [ReplayArm(name, path) for name, path in _arms(joined, arm, bundles).items()]
    found = run_replay(arms, Dataset.load(data), joined.answers, as_of)
    typer.echo("\n".join(replay_lines(found)))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "replay.json").write_text(json.dumps(found.as_dict(), indent=2) + "\n")


@experiment_app.command()
def simulate(
    out: Annotated[
        Path | None,
        typer.Option(
            help="New folder for bundles, logs and reports; default: var/experiment/"
            "simulate-<UTC time>."
        ),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option(help="Regenerate the experiment section of this RESULTS.md (and its plot)."),
    ] = None,
    size: Annotated[Size, typer.Option(help="Synthetic preset.")] = Size.small,
    seed: Annotated[int, typer.Option(help="Seed of the world, training and traffic.")] = 0,
    epochs: Annotated[int, typer.Option(min=1)] = 2,
    generated: Annotated[
        int,
        typer.Option(min=1, max=32, help="Generated behaviours per user (K) of the full model."),
    ] = 16,
    gbr_epochs: Annotated[int, typer.Option(min=1, help="Epochs of the behaviour generator.")] = 2,
    requests_per_user: Annotated[int, typer.Option(min=1)] = 3,
    candidates: Annotated[int, typer.Option(min=2, max=500)] = 30,
    top_k: Annotated[int, typer.Option(min=1)] = 10,
    replicates: ReplicatesOpt = 1000,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Torch threads while training.")
    ] = None,
) -> None:
    """Train the ID-only ranker and the full model (knowledge vectors and generated behaviours)
    on a synthetic world, serve them as a 50/50 experiment (the knowledge ranker without
    generated behaviours as a shadow), let the world's shoppers click, report the A/B and an A/A
    run."""
    import logging

    from model_export.online_experiment import SimulationSpec, simulate

    if top_k > candidates:
        raise _fail(f"--top-k {top_k} is more than --candidates {candidates}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = out if out is not None else Path("var/experiment") / f"simulate-{stamp}"
    if folder.exists() and any(folder.iterdir()):
        raise _fail(
            f"{folder} is not empty: name a new --out folder (bundles are never overwritten)"
        )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    spec = SimulationSpec(
        size=size.value,
        seed=seed,
        epochs=epochs,
        generated=generated,
        gbr_epochs=gbr_epochs,
        threads=threads,
        requests_per_user=requests_per_user,
        candidates=candidates,
        top_k=top_k,
        replicates=replicates,
    )
    run = simulate(spec, folder)
    from offline.experiments import findings, table_lines

    for name, found in (("A/B", run.ab), ("A/A", run.aa)):
        typer.echo(f"{name}: experiment {found.experiment}, control {found.control}")
        typer.echo("\n".join([*table_lines(found), "", *findings(found), ""]))
    typer.echo(f"-> {folder / 'simulation.json'}", err=True)
    if results is not None:
        from model_export.experiment_section import write_section

        command = _simulate_command(spec, results)
        write_section(run, results, folder / "ctr-ab.png", command)
        typer.echo(f"-> {results}", err=True)


def _simulate_command(spec: object, results: Path) -> str:
    """The command line that regenerates the section, with the options that differ from the
    defaults."""
    from model_export.online_experiment import SimulationSpec

    defaults = SimulationSpec(size=Size.small.value)
    parts = ["reaseq experiment simulate", f"--results {results}"]
    for name in (
        "size",
        "seed",
        "epochs",
        "generated",
        "gbr_epochs",
        "requests_per_user",
        "candidates",
        "top_k",
        "replicates",
    ):
        value = getattr(spec, name)
        if value != getattr(defaults, name):
            parts.append(f"--{name.replace('_', '-')} {value}")
    return " ".join(parts)
