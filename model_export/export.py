"""ONNX graphs of a trained ranker, with the names and shapes of :mod:`service.contracts.graphs`.

The graphs take fused item vectors, not item indices: serving looks vectors up in the bundle's
item table (or the store) itself, so an item added after training needs no new graph. Export
goes through ``torch.export`` (``dynamo=True``) with symbolic batch, candidate and sequence axes.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.export import Dim

from model_export.model import RankingModel
from service.contracts import graphs as g

log = logging.getLogger(__name__)

OPSET = 18
_CHATTY_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")


class UserEncoderGraph(nn.Module):
    """``user_encoder``: behaviours -> keys/values of both pools (cacheable per user)."""

    def __init__(self, model: RankingModel) -> None:
        super().__init__()
        self.encoder = model.user_encoder

    def forward(
        self,
        sequence_vectors: Tensor,
        sequence_events: Tensor,
        sequence_gaps: Tensor,
        generated_vectors: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.encoder(sequence_vectors, sequence_events, sequence_gaps, generated_vectors)


class SlottedUserEncoderGraph(UserEncoderGraph):
    """``user_encoder`` of a ranker with slot vectors: each generated behaviour's rank in its
    block comes in as well (``generated_slots``)."""

    def forward(  # type: ignore[override]
        self,
        sequence_vectors: Tensor,
        sequence_events: Tensor,
        sequence_gaps: Tensor,
        generated_vectors: Tensor,
        generated_slots: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.encoder(
            sequence_vectors, sequence_events, sequence_gaps, generated_vectors, generated_slots
        )


class CandidateEncoderGraph(nn.Module):
    """``candidate_encoder``: candidate vectors -> queries for both pools."""

    def __init__(self, model: RankingModel) -> None:
        super().__init__()
        self.encoder = model.candidate_encoder

    def forward(self, candidate_vectors: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(candidate_vectors)


class ScorerGraph(nn.Module):
    """``scorer``: candidate vectors and pooled interests -> click probabilities."""

    def __init__(self, model: RankingModel) -> None:
        super().__init__()
        self.scorer = model.scorer

    def forward(
        self, candidate_vectors: Tensor, real_pooled: Tensor, generated_pooled: Tensor
    ) -> Tensor:
        return torch.sigmoid(self.scorer(candidate_vectors, real_pooled, generated_pooled))


class FullGraph(nn.Module):
    """``full``: the one-graph path, attention included (CPU serving and parity)."""

    def __init__(self, model: RankingModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        candidate_vectors: Tensor,
        sequence_vectors: Tensor,
        sequence_events: Tensor,
        sequence_gaps: Tensor,
        generated_vectors: Tensor,
        sequence_mask: Tensor,
        generated_mask: Tensor,
    ) -> Tensor:
        logits = self.model.score_vectors(
            candidate_vectors,
            sequence_vectors,
            sequence_events,
            sequence_gaps,
            generated_vectors,
            sequence_mask,
            generated_mask,
        )
        return torch.sigmoid(logits)


@dataclass(frozen=True)
class GraphSpec:
    """How to export one graph: its module, example inputs and symbolic axes."""

    name: str
    module: nn.Module
    inputs: dict[str, Tensor]
    outputs: tuple[str, ...]
    dynamic: dict[str, dict[int, Dim]]


def example_inputs(item_dim: int) -> dict[str, Tensor]:
    """Inputs with every dynamic axis >= 2, so export never specialises an axis to 1."""
    batch, candidates, length, generated = 2, 3, 5, 4
    generator = torch.Generator().manual_seed(0)

    def vectors(*shape: int) -> Tensor:
        return torch.randn(*shape, item_dim, generator=generator)

    return {
        g.CANDIDATE_VECTORS: vectors(batch, candidates),
        g.SEQUENCE_VECTORS: vectors(batch, length),
        g.SEQUENCE_EVENTS: torch.ones(batch, length, dtype=torch.int64),
        g.SEQUENCE_GAPS: torch.ones(batch, length, dtype=torch.int64),
        g.GENERATED_VECTORS: vectors(batch, generated),
        g.GENERATED_SLOTS: torch.arange(generated).repeat(batch, 1),
        g.SEQUENCE_MASK: torch.ones(batch, length),
        g.GENERATED_MASK: torch.ones(batch, generated),
        g.REAL_POOLED: vectors(batch, candidates),
        g.GENERATED_POOLED: vectors(batch, candidates),
    }


def graph_specs(model: RankingModel) -> list[GraphSpec]:
    batch, cands = Dim("batch"), Dim("candidates")
    length, generated = Dim("sequence"), Dim("generated")
    by_batch_cand = {0: batch, 1: cands}
    by_batch_len = {0: batch, 1: length}
    by_batch_gen = {0: batch, 1: generated}
    ex = example_inputs(model.shape.item_dim)

    def pick(*names: str) -> dict[str, Tensor]:
        return {name: ex[name] for name in names}

    behaviours = (g.SEQUENCE_VECTORS, g.SEQUENCE_EVENTS, g.SEQUENCE_GAPS, g.GENERATED_VECTORS)
    slotted = model.user_encoder.slotted
    user_in = pick(*behaviours, *((g.GENERATED_SLOTS,) if slotted else ()))
    user_graph = SlottedUserEncoderGraph(model) if slotted else UserEncoderGraph(model)
    # The full graph ranks the slots from the generated mask itself (RankingModel.score_vectors).
    full_in = pick(g.CANDIDATE_VECTORS, *behaviours, g.SEQUENCE_MASK, g.GENERATED_MASK)
    axes = {
        g.CANDIDATE_VECTORS: by_batch_cand,
        g.REAL_POOLED: by_batch_cand,
        g.GENERATED_POOLED: by_batch_cand,
        g.SEQUENCE_VECTORS: by_batch_len,
        g.SEQUENCE_EVENTS: by_batch_len,
        g.SEQUENCE_GAPS: by_batch_len,
        g.SEQUENCE_MASK: by_batch_len,
        g.GENERATED_VECTORS: by_batch_gen,
        g.GENERATED_SLOTS: by_batch_gen,
        g.GENERATED_MASK: by_batch_gen,
    }

    def spec(name: str, module: nn.Module, inputs: dict[str, Tensor], *outs: str) -> GraphSpec:
        return GraphSpec(name, module, inputs, outs, {k: axes[k] for k in inputs})

    return [
        spec(
            g.USER_ENCODER,
            user_graph,
            user_in,
            g.REAL_KEYS,
            g.REAL_VALUES,
            g.GENERATED_KEYS,
            g.GENERATED_VALUES,
        ),
        spec(
            g.CANDIDATE_ENCODER,
            CandidateEncoderGraph(model),
            pick(g.CANDIDATE_VECTORS),
            g.REAL_QUERIES,
            g.GENERATED_QUERIES,
        ),
        spec(
            g.SCORER,
            ScorerGraph(model),
            pick(g.CANDIDATE_VECTORS, g.REAL_POOLED, g.GENERATED_POOLED),
            g.SCORES,
        ),
        spec(g.FULL, FullGraph(model), full_in, g.SCORES),
    ]


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter (optional torchvision ops, axis renames, optimiser passes)
    for one export; real errors still raise."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def export_graph(spec: GraphSpec, path: Path) -> None:
    """Write one graph; the ONNX file is self-contained (weights inline, no external data)."""
    with _quiet_exporter():
        program = _export_program(spec)
    if program is None:
        raise RuntimeError(f"torch.onnx.export returned no program for {spec.name}")
    program.save(str(path), external_data=False)


def _export_program(spec: GraphSpec) -> torch.onnx.ONNXProgram | None:
    return torch.onnx.export(
        spec.module.eval(),
        args=(),
        kwargs=spec.inputs,
        dynamo=True,
        dynamic_shapes=spec.dynamic,
        input_names=list(spec.inputs),
        output_names=list(spec.outputs),
        opset_version=OPSET,
        external_data=False,
        optimize=True,
        verify=False,
        report=False,
        verbose=False,
    )


def export_graphs(model: RankingModel, directory: Path) -> dict[str, str]:
    """Export every graph of the contract into ``directory``; returns graph name -> file name."""
    frozen = copy.deepcopy(model).eval()
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    files: dict[str, str] = {}
    for spec in graph_specs(frozen):
        file_name = f"{spec.name}.onnx"
        log.info("exporting %s", spec.name)
        export_graph(spec, directory / file_name)
        files[spec.name] = file_name
    return files
