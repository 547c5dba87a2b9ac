"""Parity between PyTorch, the exported full graph and the serving scorers.

Serving runs ``user_encoder`` -> ``candidate_encoder`` -> target attention -> ``scorer``, or the
``full`` graph in one go. The split path is checked through the serving code itself: the host
scorer (:class:`service.ranking.scoring.GraphRunner`, attention on ``onnx_cpu``) and, when the
bundle carries module weights, the device path (:class:`service.device.runner.DeviceRunner` on
PyTorch's CPU tensors, its graphs rebuilt from those weights, as on a GPU without
onnxruntime-gpu). All of these must score a request the same as the trained PyTorch model, on
awkward shapes too: one candidate, an empty generated block (one masked slot), a user with no
history, several users in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from model_export.export import FullGraph
from model_export.train import TrainedRanker
from service.bundles.loaded import LoadedBundle
from service.contracts import graphs as g
from service.contracts.features import EVENT_VOCAB_SIZE, TIME_GAP_BUCKETS
from service.ranking.behaviours import BehaviourBlock
from service.ranking.scoring import GraphRunner, ScoringRequest, ScoringRunner

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
    #: Holes in the generated blocks (masked slots between filled ones, as a generator that
    #: drops an item leaves): slot ranks must count filled slots only, on every path.
    gapped_generated: bool = False


DEFAULT_SHAPES: tuple[ParityShape, ...] = (
    ParityShape(1, 1, 1, 1, empty_generated=True),
    ParityShape(1, 1, 7, 3),
    ParityShape(2, 3, 5, 4),
    ParityShape(3, 17, 50, 1, empty_generated=True),
    ParityShape(4, 64, 128, 16),
    ParityShape(2, 5, 6, 6, gapped_generated=True),
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
    if shape.gapped_generated and not shape.empty_generated:
        generated_mask = np.ones((b, k), np.float32)
        generated_mask[:, 1 : k - 1 : 2] = 0.0  # every other slot inside the block
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
    """A bundle as the service loads it (CPU provider), and its scorers."""

    def __init__(self, bundle_dir: Path) -> None:
        self.bundle = LoadedBundle.load(bundle_dir)
        manifest = self.bundle.manifest
        self.heads = manifest.dimensions.heads
        self.item_dim = manifest.dimensions.item_dim
        self.sessions = self.bundle.sessions
        self.has_module_weights = manifest.module_weights is not None

    def run(self, name: str, feeds: Feeds) -> list[npt.NDArray[np.float32]]:
        session = self.sessions[name]
        wanted = {i.name for i in session.get_inputs()}
        return session.run(None, {k: v for k, v in feeds.items() if k in wanted})  # type: ignore[return-value]

    def full(self, feeds: Feeds) -> npt.NDArray[np.float32]:
        return self.run(g.FULL, feeds)[0]

    def chained(self, feeds: Feeds) -> npt.NDArray[np.float32]:
        """The split path as the CPU service serves it: the padded batch's requests in one
        batch through the host scorer."""
        return _scores(GraphRunner(self.bundle), feeds)

    def device(self, feeds: Feeds) -> npt.NDArray[np.float32]:
        """The device path on PyTorch's CPU tensors, its graphs rebuilt from the bundle's module
        weights and PyTorch's attention (the Triton kernel is checked against that elsewhere)."""
        from kernels.target_attention import AttentionBackend
        from service.device.context import device_context
        from service.device.graphs import TorchGraphs
        from service.device.modules import load_modules
        from service.device.runner import DeviceRunner

        context = device_context("cpu")
        modules = load_modules(self.bundle.directory, self.bundle.manifest, context.device)
        runner = DeviceRunner(self.bundle, context, TorchGraphs(modules), AttentionBackend.TORCH)
        return _scores(runner, feeds)


def _scores(runner: ScoringRunner, feeds: Feeds) -> npt.NDArray[np.float32]:
    """Scores ``[B, C]`` of the padded batch ``feeds``, scored as ``B`` requests in one batch."""
    requests = []
    real_length = feeds[g.SEQUENCE_MASK].shape[1]
    generated_length = feeds[g.GENERATED_MASK].shape[1]
    for b in range(len(feeds[g.CANDIDATE_VECTORS])):
        real = BehaviourBlock(
            item_ids=[""] * real_length,
            vectors=np.asarray(feeds[g.SEQUENCE_VECTORS][b], np.float32),
            mask=np.asarray(feeds[g.SEQUENCE_MASK][b], np.float32),
            events=np.asarray(feeds[g.SEQUENCE_EVENTS][b], np.int64),
            gaps=np.asarray(feeds[g.SEQUENCE_GAPS][b], np.int64),
        )
        generated = BehaviourBlock(
            item_ids=[""] * generated_length,
            vectors=np.asarray(feeds[g.GENERATED_VECTORS][b], np.float32),
            mask=np.asarray(feeds[g.GENERATED_MASK][b], np.float32),
            events=np.zeros(generated_length, np.int64),
            gaps=np.zeros(generated_length, np.int64),
        )
        candidates = np.asarray(feeds[g.CANDIDATE_VECTORS][b], np.float32)
        requests.append(ScoringRequest(candidates, real, generated))
    return np.stack([result.scores for result in runner.score_batch(requests)])


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
    """Largest absolute score difference per comparison, over all ``shapes``: the full graph
    against the host scorer (``full_vs_chained``), the device path (``full_vs_device``, when
    the bundle has module weights) and the trained model (``torch_vs_full``, when given)."""
    graphs = BundleGraphs(bundle_dir)
    rng = np.random.default_rng(seed)
    worst = {"full_vs_chained": 0.0}
    if graphs.has_module_weights:
        worst["full_vs_device"] = 0.0
    if trained is not None:
        worst["torch_vs_full"] = 0.0
    for shape in shapes:
        feeds = random_feeds(shape, graphs.item_dim, rng)
        full = graphs.full(feeds)
        if full.shape != (shape.batch, shape.candidates) or not np.isfinite(full).all():
            raise AssertionError(f"full graph gave {full.shape} scores, some not finite: {shape}")
        diffs = {"full_vs_chained": np.abs(full - graphs.chained(feeds)).max()}
        if graphs.has_module_weights:
            diffs["full_vs_device"] = np.abs(full - graphs.device(feeds)).max()
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
