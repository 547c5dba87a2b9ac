"""``python -m bench.user_encoder``: what the self-attention user encoder costs at serving.

Trains the light ranker and the one with causal self-attention layers for one epoch on the small
synthetic preset (their weights do not change the cost), exports both, and times each bundle's
``user_encoder`` graph in onnxruntime (one thread, sequential: the service's settings) for one
user at several sequence lengths. The user encoder runs once per user and bundle; the per-user
cache serves later pages of the same user without it, so this is the cost of a cache miss.
Writes ``docs/USER_ENCODER.md`` (and prints it): a Markdown table with the machine it ran on.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

app = typer.Typer(add_completion=False, help=__doc__)

LENGTHS = (50, 256, 1000)
GENERATED = 16


def _bundle(layers: int, root: Path) -> Path:
    from model_export.pipeline import encode_items, export_run, train_run
    from model_export.train import TrainConfig
    from offline.data.synthetic import SyntheticConfig, generate

    dataset = generate(SyntheticConfig.preset("small", seed=0))
    # The graphs' sequence axis is symbolic: a short training length serves any length.
    config = TrainConfig(epochs=1, progress=False, user_layers=layers)
    semantic = encode_items(dataset.catalogue)
    run = train_run(dataset, config, semantic=semantic, variants=("model",))
    return export_run(run, dataset, root)


def _median_ms(bundle: Path, length: int, repeats: int) -> float:
    import onnxruntime as ort

    from service.contracts import graphs as g

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(
        str(bundle / f"{g.USER_ENCODER}.onnx"), options, providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    dim = session.get_inputs()[0].shape[-1]
    dim = dim if isinstance(dim, int) else 64
    feeds = {
        g.SEQUENCE_VECTORS: rng.normal(size=(1, length, dim)).astype(np.float32),
        g.SEQUENCE_EVENTS: np.ones((1, length), np.int64),
        g.SEQUENCE_GAPS: rng.integers(0, 18, size=(1, length)).astype(np.int64),
        g.GENERATED_VECTORS: rng.normal(size=(1, GENERATED, dim)).astype(np.float32),
    }
    session.run(None, feeds)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


@app.command()
def main(
    layers: Annotated[int, typer.Option(min=1, help="Self-attention layers to compare.")] = 1,
    repeats: Annotated[int, typer.Option(min=10)] = 200,
    out: Annotated[Path, typer.Option(help="Markdown file to write.")] = Path(
        "docs/USER_ENCODER.md"
    ),
) -> None:
    from datetime import UTC, datetime

    from model_export.report import machine_description

    lines = [
        "# User encoder cost",
        "",
        f"_Regenerate with `python -m bench.user_encoder`; measured on {machine_description()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC._",
        "",
        "Time of the bundle's `user_encoder` graph for one user (onnxruntime, one thread, "
        f"sequential), median of {repeats} calls: what a per-user cache miss costs. The light "
        "encoder projects each behaviour on its own; the self-attention one first runs causal "
        "self-attention over the sequence, quadratic in its length.",
        "",
        f"| behaviours | light (ms) | {layers} self-attention layer(s) (ms) |",
        "| --- | --- | --- |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        light = _bundle(0, Path(tmp) / "light")
        attention = _bundle(layers, Path(tmp) / "attention")
        for length in LENGTHS:
            cells = [_median_ms(bundle, length, repeats) for bundle in (light, attention)]
            lines.append(f"| {length} + {GENERATED} | {cells[0]:.3f} | {cells[1]:.3f} |")
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    typer.echo(text)


if __name__ == "__main__":
    app()
