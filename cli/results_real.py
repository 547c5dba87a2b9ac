"""``reaseq results-real``: the real-data benchmark into docs/RESULTS.md and results.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

DATASET_HINT = (
    "MovieLens latest-small (ratings.csv, movies.csv, tags.csv), from the GroupLens site "
    "(grouplens.org/datasets/movielens): unzip it and pass its folder"
)


def results_real(
    source: Annotated[
        Path | None,
        typer.Option(
            exists=True, file_okay=False, dir_okay=True, help=f"Dataset folder: {DATASET_HINT}."
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Number of seeds (0..n-1).")] = 3,
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs (early stopping).")] = 5,
    jobs: Annotated[
        int, typer.Option(min=1, help="Seeds run at once, one process (one thread) each.")
    ] = 1,
    render_only: Annotated[
        bool, typer.Option(help="Re-render the section from results.json, without training.")
    ] = False,
    docs: Annotated[Path, typer.Option(help="Folder of RESULTS.md and results.json.")] = Path(
        "docs"
    ),
    variant: Annotated[
        list[str] | None,
        typer.Option(
            help="Train only this variant (repeatable) and merge it into the runs recorded in "
            "results.json (same seeds and data); the recorded rows stay as measured."
        ),
    ] = None,
) -> None:
    """Regenerate the real-data section of docs/RESULTS.md and results.json: popularity, ID
    only, knowledge only and the fused rankers on a public log, time split with validation,
    honest negatives, 3 seeds."""
    from dataclasses import replace

    from model_export.real_data import VARIANTS, RealDataSpec
    from model_export.real_recorded import add_variants, rerender
    from model_export.real_report import write_real_results

    if render_only:
        recorded = rerender(docs)
        typer.echo(json.dumps(recorded["summary"]["gains_over_id_only"].get("full", {}), indent=2))
        return
    if source is None:
        typer.echo(f"error: --source is required: {DATASET_HINT}")
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not (source / "ratings.csv").is_file() and not (source / "ratings.dat").is_file():
        typer.echo(f"error: {source} has no ratings.csv or ratings.dat; expected {DATASET_HINT}")
        raise typer.Exit(2)
    if variant:
        unknown = sorted(set(variant) - set(VARIANTS))
        if unknown:
            typer.echo(f"error: unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
            raise typer.Exit(2)
        if not (docs / "results.json").is_file():
            typer.echo(f"error: {docs / 'results.json'} not found; run without --variant first")
            raise typer.Exit(2)
        recorded = add_variants(source, tuple(variant), docs, jobs)
        typer.echo(json.dumps(recorded["summary"].get("gbr_gain", {}), indent=2))
        return
    spec = RealDataSpec(source=source, seeds=tuple(range(seeds)))
    spec = replace(spec, ranker=replace(spec.ranker, epochs=epochs))
    document = write_real_results(spec, docs, jobs)
    typer.echo(json.dumps(document["summary"]["gains_over_id_only"].get("full", {}), indent=2))


def register(app: typer.Typer) -> None:
    app.command("results-real")(results_real)
