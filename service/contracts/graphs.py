"""Names and shapes of the ONNX graphs in a bundle.

Axes: ``B`` requests in a batch, ``C`` candidates, ``L`` real behaviours, ``K`` generated
behaviours, ``d`` item dimension. Masks are float32, 1 for a real slot and 0 for padding; callers
pad an empty sequence or an empty generated block to one masked slot, and the attention pools a
fully masked row to zeros.
"""

from __future__ import annotations

from typing import Final

USER_ENCODER: Final = "user_encoder"
CANDIDATE_ENCODER: Final = "candidate_encoder"
SCORER: Final = "scorer"
FULL: Final = "full"
GRAPH_NAMES: Final = (USER_ENCODER, CANDIDATE_ENCODER, SCORER, FULL)

# user_encoder
SEQUENCE_VECTORS: Final = "sequence_vectors"  # [B, L, d] float32
SEQUENCE_EVENTS: Final = "sequence_events"  # [B, L] int64, ids from service.contracts.features
SEQUENCE_GAPS: Final = "sequence_gaps"  # [B, L] int64, time-gap buckets
GENERATED_VECTORS: Final = "generated_vectors"  # [B, K, d] float32
#: [B, K] int64, each generated behaviour's rank among its block's filled slots (0 first); an
#: input only of bundles whose manifest has ``dimensions.generated_slots`` above 0.
GENERATED_SLOTS: Final = "generated_slots"
REAL_KEYS: Final = "real_keys"  # [B, L, d]
REAL_VALUES: Final = "real_values"  # [B, L, d]
GENERATED_KEYS: Final = "generated_keys"  # [B, K, d]
GENERATED_VALUES: Final = "generated_values"  # [B, K, d]

# candidate_encoder
CANDIDATE_VECTORS: Final = "candidate_vectors"  # [B, C, d] float32
REAL_QUERIES: Final = "real_queries"  # [B, C, d]
GENERATED_QUERIES: Final = "generated_queries"  # [B, C, d]

# scorer (takes CANDIDATE_VECTORS too)
REAL_POOLED: Final = "real_pooled"  # [B, C, d], target attention over the real sequence
GENERATED_POOLED: Final = "generated_pooled"  # [B, C, d], over the generated block
SCORES: Final = "scores"  # [B, C] click probabilities

# full graph: CANDIDATE_VECTORS, SEQUENCE_*, GENERATED_VECTORS and the two masks -> SCORES
# (a slotted bundle's full graph ranks the generated slots from GENERATED_MASK itself)
SEQUENCE_MASK: Final = "sequence_mask"  # [B, L] float32
GENERATED_MASK: Final = "generated_mask"  # [B, K] float32
