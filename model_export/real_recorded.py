"""The runs recorded in ``results.json``: re-render the real-data section from them, or train a
new variant on the same seeds and data and merge it in (the recorded rows stay as measured)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model_export.real_data import RealDataSpec, choose_full
from model_export.real_report import jsonable, render, run_seeds, splice, summarise
from model_export.train import TrainConfig
from offline.data.loaders import LoaderConfig


def spec_from_dict(data: dict[str, Any]) -> RealDataSpec:
    """The spec recorded in ``results.json`` (what :func:`rerender` needs)."""
    return RealDataSpec(
        source=Path(str(data["source"])),
        format=data["format"],
        seeds=tuple(data["seeds"]),
        loader=LoaderConfig(**data["loader"]),
        ranker=TrainConfig(**data["ranker"]),
        semantic_dim=data["semantic_dim"],
        sampled_items=data["sampled_items"],
        variants=tuple(data["variants"]),
    )


def rerender(docs_dir: Path) -> dict[str, Any]:
    """The section again from the runs recorded in ``results.json``, without training (after
    a change of the report's wording or tables)."""
    document = json.loads((docs_dir / "results.json").read_text())
    recorded = document["real_data"]
    spec, runs = spec_from_dict(recorded["spec"]), recorded["runs"]
    choose_full(runs)
    recorded["summary"] = summarise(runs)
    context = {key: recorded[key] for key in ("command", "machine", "generated_at", "seconds")}
    markdown = docs_dir / "RESULTS.md"
    markdown.write_text(
        splice(markdown.read_text(), render(spec, recorded["summary"], runs, context))
    )
    (docs_dir / "results.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    return recorded


def add_variants(
    source: Path, variants: tuple[str, ...], docs_dir: Path, jobs: int = 1
) -> dict[str, Any]:
    """Train only ``variants`` on the recorded spec's seeds and data (``source``), merge their
    rows into the runs recorded in ``results.json`` (replacing rows of the same name), choose
    ``full`` again on validation and rewrite the section. The recorded rows stay as measured."""
    started = time.perf_counter()
    document = json.loads((docs_dir / "results.json").read_text())
    recorded = document["real_data"]
    spec = replace(spec_from_dict(recorded["spec"]), source=source)
    new_runs = jsonable(run_seeds(replace(spec, variants=variants), jobs))
    runs = recorded["runs"]
    for run, new in zip(runs, new_runs, strict=True):
        if run["seed"] != new["seed"]:
            raise ValueError("recorded runs and new runs are not the same seeds")
        run["rows"] |= {name: new["rows"][name] for name in variants}
        run["validation_gauc"] |= new["validation_gauc"]
        run["best_epoch"] |= new["best_epoch"]
        if new.get("generator"):
            run["generator"] = new["generator"]
    choose_full(runs)
    every = tuple(dict.fromkeys((*recorded["spec"]["variants"], *variants)))
    recorded["spec"] = recorded["spec"] | {"variants": list(every)}
    recorded["seconds"] = recorded["seconds"] + time.perf_counter() - started
    recorded["generated_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    recorded["added_variants"] = list(variants)
    recorded["summary"] = summarise(runs)
    context = {key: recorded[key] for key in ("command", "machine", "generated_at", "seconds")}
    markdown = docs_dir / "RESULTS.md"
    full_spec = replace(spec, variants=every)
    markdown.write_text(
        splice(markdown.read_text(), render(full_spec, recorded["summary"], runs, context))
    )
    (docs_dir / "results.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    return recorded
