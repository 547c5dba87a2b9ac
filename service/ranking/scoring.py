"""Run the bundle's graphs on one request: split (encoders, NumPy attention, scorer) or full."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from kernels.target_attention import AttentionBackend, target_attention
from service.bundle import LoadedBundle
from service.contracts import graphs
from service.ranking.behaviours import BehaviourBlock
from service.ranking.observer import NO_OBSERVER, RankingObserver, Stage
from service.stores.base import FloatArray

GraphMode = Literal["split", "full"]


@dataclass(frozen=True, slots=True)
class ScoreResult:
    scores: FloatArray  # [C]
    real_weights: FloatArray | None  # [C, L], head-averaged attention, when explaining
    generated_weights: FloatArray | None  # [C, K]


class GraphRunner:
    """Scores candidates against behaviour blocks with batch dimension B = 1."""

    def __init__(
        self,
        bundle: LoadedBundle,
        mode: GraphMode = "split",
        backend: AttentionBackend = AttentionBackend.NUMPY,
        observer: RankingObserver = NO_OBSERVER,
    ) -> None:
        self._bundle = bundle
        self._mode = mode
        self._backend = backend
        self._observer = observer
        self._heads = bundle.manifest.dimensions.heads

    def score(
        self,
        candidates: FloatArray,
        real: BehaviourBlock,
        generated: BehaviourBlock,
        explain: bool = False,
    ) -> ScoreResult:
        """Scores ``[C]``; attention weights come from the split path, so explaining uses it."""
        if self._mode == "full" and not explain:
            return self._full(candidates, real, generated)
        return self._split(candidates, real, generated, explain)

    def _full(
        self, candidates: FloatArray, real: BehaviourBlock, generated: BehaviourBlock
    ) -> ScoreResult:
        with self._observer.stage(Stage.FULL):
            out = self._run_full(candidates, real, generated)
        return ScoreResult(out[graphs.SCORES][0], None, None)

    def _run_full(
        self, candidates: FloatArray, real: BehaviourBlock, generated: BehaviourBlock
    ) -> dict[str, np.ndarray]:
        return self._bundle.run(
            graphs.FULL,
            {
                graphs.CANDIDATE_VECTORS: candidates[None],
                graphs.SEQUENCE_VECTORS: real.vectors[None],
                graphs.SEQUENCE_EVENTS: real.events[None],
                graphs.SEQUENCE_GAPS: real.gaps[None],
                graphs.SEQUENCE_MASK: real.mask[None],
                graphs.GENERATED_VECTORS: generated.vectors[None],
                graphs.GENERATED_MASK: generated.mask[None],
            },
        )

    def _split(
        self,
        candidates: FloatArray,
        real: BehaviourBlock,
        generated: BehaviourBlock,
        explain: bool,
    ) -> ScoreResult:
        stage = self._observer.stage
        with stage(Stage.USER_ENCODER):
            user = self._bundle.run(
                graphs.USER_ENCODER,
                {
                    graphs.SEQUENCE_VECTORS: real.vectors[None],
                    graphs.SEQUENCE_EVENTS: real.events[None],
                    graphs.SEQUENCE_GAPS: real.gaps[None],
                    graphs.GENERATED_VECTORS: generated.vectors[None],
                },
            )
        with stage(Stage.CANDIDATE_ENCODER):
            queries = self._bundle.run(
                graphs.CANDIDATE_ENCODER, {graphs.CANDIDATE_VECTORS: candidates[None]}
            )
        with stage(Stage.ATTENTION):
            real_pooled, real_weights = self._attend(
                queries[graphs.REAL_QUERIES],
                user[graphs.REAL_KEYS],
                user[graphs.REAL_VALUES],
                real.mask,
                explain,
            )
            gen_pooled, gen_weights = self._attend(
                queries[graphs.GENERATED_QUERIES],
                user[graphs.GENERATED_KEYS],
                user[graphs.GENERATED_VALUES],
                generated.mask,
                explain,
            )
        with stage(Stage.SCORER):
            out = self._bundle.run(
                graphs.SCORER,
                {
                    graphs.CANDIDATE_VECTORS: candidates[None],
                    graphs.REAL_POOLED: real_pooled,
                    graphs.GENERATED_POOLED: gen_pooled,
                },
            )
        return ScoreResult(
            out[graphs.SCORES][0],
            None if real_weights is None else real_weights[0],
            None if gen_weights is None else gen_weights[0],
        )

    def _attend(
        self,
        queries: np.ndarray,
        keys: np.ndarray,
        values: np.ndarray,
        mask: FloatArray,
        explain: bool,
    ) -> tuple[FloatArray, FloatArray | None]:
        return target_attention(
            queries.astype(np.float32, copy=False),
            keys.astype(np.float32, copy=False),
            values.astype(np.float32, copy=False),
            mask[None],
            self._heads,
            return_weights=explain,
            backend=self._backend,
        )
