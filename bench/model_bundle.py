"""A serving bundle of a randomly initialised ranker, for the device-path checks.

The GPU check and the device-path tests need a bundle of the real model (graphs, item table,
module weights) at chosen shapes, on a machine that may have no training data and no package
registry: training would measure nothing the parity and speed checks care about. Every weight is
drawn at random (the generated-value projection too, which training starts at zero), so every
part of the model moves the scores. ``exporter="dynamo"`` writes the graphs as ``reaseq export``
does; ``"torchscript"`` uses PyTorch's older exporter, which is faster, for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from model_export.bundle import ManifestFacts, write_bundle_files
from model_export.export import OPSET, export_graphs, graph_specs
from model_export.model import RankerShape, RankingModel
from service.contracts.bundle_root import write_current
from service.contracts.manifest import GeneratorInfo, MaxLengths

Exporter = Literal["dynamo", "torchscript"]
GENERATOR = GeneratorInfo(version="random-ranker")


@dataclass(frozen=True)
class RandomRanker:
    """The shape of the ranker and of what serving feeds it."""

    items: int = 64
    item_dim: int = 32
    heads: int = 2
    hidden_dim: int = 32
    user_layers: int = 1
    max_sequence: int = 12
    max_generated: int = 4
    semantic_dim: int = 8
    seed: int = 0


def random_model(spec: RandomRanker) -> RankingModel:
    generator = torch.Generator().manual_seed(spec.seed)
    shape = RankerShape(
        n_items=spec.items,
        semantic_dim=spec.semantic_dim,
        item_dim=spec.item_dim,
        heads=spec.heads,
        hidden_dim=spec.hidden_dim,
        user_layers=spec.user_layers,
    )
    semantic = torch.randn(spec.items, spec.semantic_dim, generator=generator)
    counts = torch.randint(0, 5, (spec.items,), generator=generator)
    model = RankingModel(shape, semantic, counts).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            scale = 0.5 / max(1, parameter.shape[-1]) ** 0.5 if parameter.dim() > 1 else 0.1
            parameter.copy_(scale * torch.randn(parameter.shape, generator=generator))
    return model


def write_random_bundle(
    root: Path, version: str, spec: RandomRanker, exporter: Exporter = "dynamo"
) -> Path:
    """Write ``root/<version>/`` (graphs, module weights, float16 item table, manifest) and
    name it in ``root/CURRENT``; returns the bundle's folder."""
    model = random_model(spec)
    bundle_dir = root / version
    bundle_dir.mkdir(parents=True, exist_ok=False)
    graphs = (
        export_graphs(model, bundle_dir)
        if exporter == "dynamo"
        else _export_torchscript(model, bundle_dir)
    )
    facts = ManifestFacts(
        max_lengths=MaxLengths(sequence=spec.max_sequence, generated=spec.max_generated),
        generator=GENERATOR,
    )
    item_ids = [f"i{n}" for n in range(spec.items)]
    write_bundle_files(model, graphs, item_ids, bundle_dir, facts, version)
    write_current(root, version)
    return bundle_dir


def _export_torchscript(model: RankingModel, directory: Path) -> dict[str, str]:
    """The graphs through PyTorch's TorchScript-based exporter, with the same names and
    symbolic axes as :func:`model_export.export.export_graphs`."""
    import warnings

    files = {}
    for spec in graph_specs(model):
        axes: dict[str, dict[int, str]] = {
            name: {axis: str(dim) for axis, dim in dims.items()}
            for name, dims in spec.dynamic.items()
        }
        for name in spec.outputs:
            axes[name] = {0: "batch", 1: f"{name}_rows"}
        files[spec.name] = f"{spec.name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                spec.module.eval(),
                tuple(spec.inputs.values()),
                str(directory / files[spec.name]),
                input_names=list(spec.inputs),
                output_names=list(spec.outputs),
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    return files
