"""Parity between PyTorch, the exported full graph and the split graphs chained with the kernel.

Serving runs ``user_encoder`` -> ``candidate_encoder`` -> target attention (the NumPy reference
on CPU, Triton on GPU) -> ``scorer``, or the ``full`` graph in one go. All of these must score a
request the same as the trained PyTorch model, on awkward shapes too: one candidate, an empty
generated block (one masked slot), a user with no history.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch

from kernels.target_attention import target_attention
from model_export.export import FullGraph
from model_export.train import TrainedRanker
from service.contracts import graphs as g
from service.contracts.manifest import read_manifest
from service.features import EVENT_VOCAB_SIZE, TIME_GAP_BUCKETS

Feeds = dict[str, npt.NDArray[np.generic]]


@dataclass(frozen=True)
class ParityShape:
    """A padded request batch: ``B`` requests, ``C`` candidates, ``L`` real, ``K`` generated."""

    batch: int
    candidates: int
    sequence: int
    generated: int
    #: Every generated slot masked: a user without generated behaviours (K = 0 on the wire).
    empty_generated: bool = False


DEFAULT_SHAPES: tuple[ParityShape, ...] = (
    ParityShape(1, 1, 1, 1, empty_generated=True),
    ParityShape(1, 1, 7, 3),
    ParityShape(2, 3, 5, 4),
    ParityShape(3, 17, 50, 1, empty_generated=True),
    ParityShape(4, 64, 128, 16),
)


def random_feeds(shape: ParityShape, item_dim: int, rng: np.random.Generator) -> Feeds:
    """Inputs of the full graph, with ragged masks (row 0 keeps no history when B > 1)."""
    b, c, length, k = shape.batch, shape.candidates, shape.sequence, shape.generated

    def vectors(*dims: int) -> npt.NDArray[np.float32]:
        return (0.5 * rng.standard_normal((*dims, item_dim))).astype(np.float32)

    lengths = rng.integers(1, length + 1, size=b)
    lengths[-1] = length
    if b > 1:
        lengths[0] = 0
    sequence_mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.float32)
    generated_mask = (
        np.zeros((b, k), np.float32)
        if shape.empty_generated
        else (np.arange(k)[None, :] < rng.integers(1, k + 1, size=b)[:, None]).astype(np.float32)
    )
    return {
        g.CANDIDATE_VECTORS: vectors(b, c),
        g.SEQUENCE_VECTORS: vectors(b, length),
        g.SEQUENCE_EVENTS: (rng.integers(1, EVENT_VOCAB_SIZE, (b, length)) * sequence_mask).astype(
            np.int64
        ),
        g.SEQUENCE_GAPS: rng.integers(0, TIME_GAP_BUCKETS, (b, length)).astype(np.int64),
        g.GENERATED_VECTORS: vectors(b, k),
        g.SEQUENCE_MASK: sequence_mask,
        g.GENERATED_MASK: generated_mask,
    }


class BundleGraphs:
    """onnxruntime sessions over a bundle's graphs (CPU provider)."""

    def __init__(self, bundle_dir: Path) -> None:
        manifest = read_manifest(bundle_dir)
        self.heads = manifest.dimensions.heads
        self.item_dim = manifest.dimensions.item_dim
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.sessions = {
            name: ort.InferenceSession(
                str(bundle_dir / file), options, providers=["CPUExecutionProvider"]
            )
            for name, file in manifest.graphs.items()
        }

    def run(self, name: str, feeds: Feeds) -> list[npt.NDArray[np.float32]]:
        session = self.sessions[name]
        wanted = {i.name for i in session.get_inputs()}
        return session.run(None, {k: v for k, v in feeds.items() if k in wanted})  # type: ignore[return-value]

    def full(self, feeds: Feeds) -> npt.NDArray[np.float32]:
        return self.run(g.FULL, feeds)[0]

    def chained(self, feeds: Feeds) -> npt.NDArray[np.float32]:
        """The split serving path: encoders, NumPy target attention per pool, scorer."""
        real_k, real_v, gen_k, gen_v = self.run(g.USER_ENCODER, feeds)
        real_q, gen_q = self.run(g.CANDIDATE_ENCODER, feeds)
        real_mask = np.asarray(feeds[g.SEQUENCE_MASK], dtype=np.float32)
        gen_mask = np.asarray(feeds[g.GENERATED_MASK], dtype=np.float32)
        real_pooled, _ = target_attention(real_q, real_k, real_v, real_mask, self.heads)
        gen_pooled, _ = target_attention(gen_q, gen_k, gen_v, gen_mask, self.heads)
        scorer_feeds = {
            g.CANDIDATE_VECTORS: feeds[g.CANDIDATE_VECTORS],
            g.REAL_POOLED: real_pooled,
            g.GENERATED_POOLED: gen_pooled,
        }
        return self.run(g.SCORER, scorer_feeds)[0]


def torch_scores(trained: TrainedRanker, feeds: Feeds) -> npt.NDArray[np.float32]:
    graph = FullGraph(trained.model).eval()
    with torch.inference_mode():
        return graph(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()


def parity_report(
    bundle_dir: Path,
    trained: TrainedRanker | None = None,
    shapes: tuple[ParityShape, ...] = DEFAULT_SHAPES,
    seed: int = 0,
) -> dict[str, float]:
    """Largest absolute score difference per comparison, over all ``shapes``."""
    graphs = BundleGraphs(bundle_dir)
    rng = np.random.default_rng(seed)
    worst = {"full_vs_chained": 0.0}
    if trained is not None:
        worst["torch_vs_full"] = 0.0
    for shape in shapes:
        feeds = random_feeds(shape, graphs.item_dim, rng)
        full = graphs.full(feeds)
        if full.shape != (shape.batch, shape.candidates) or not np.isfinite(full).all():
            raise AssertionError(f"full graph gave {full.shape} scores, some not finite: {shape}")
        diffs = {"full_vs_chained": np.abs(full - graphs.chained(feeds)).max()}
        if trained is not None:
            diffs["torch_vs_full"] = np.abs(full - torch_scores(trained, feeds)).max()
        for name, diff in diffs.items():
            worst[name] = max(worst[name], float(diff))
    return worst


def check_parity(
    bundle_dir: Path,
    trained: TrainedRanker | None = None,
    shapes: tuple[ParityShape, ...] = DEFAULT_SHAPES,
    seed: int = 0,
) -> float:
    """The worst score difference between any two paths (PyTorch when ``trained`` is given)."""
    return max(parity_report(bundle_dir, trained, shapes, seed).values())
