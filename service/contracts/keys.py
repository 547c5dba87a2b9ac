"""Redis key layout and value encodings, shared by the publisher (writer) and the Redis store.

All of a user's keys carry the user ID as a hash tag (``{u42}``) so they live on one Redis
Cluster slot. Vectors are raw little-endian float16 bytes, never JSON.

- ``reaseq:active_bundle`` -> bundle version (str)
- ``reaseq:item:<version>:<item_id>`` -> fused item vector, ``d`` float16
- ``reaseq:user:{<user_id>}:seq`` -> hash: ``items`` (IDs joined by ``ITEM_SEPARATOR``),
  ``events`` (uint8 event-type ids), ``ts`` (int64 Unix seconds), oldest first, capped
- ``reaseq:user:{<user_id>}:seqvec:<version>`` -> the sequence's item vectors under that bundle
  version (a denormalised copy so a request needs one round trip): ``SEQUENCE_VECTORS_TAG``, the
  16-byte digest of the item IDs it was written for (``sequence_digest``), then ``L x d``
  float16. A copy whose digest is not that of the sequence read with it (written for an older
  sequence, e.g. under a version that was not served while events were appended) is not used.
- ``reaseq:user:{<user_id>}:gen`` -> hash: ``vectors`` (``K x d`` float16), ``items``,
  ``gbr_version``, ``created_at``; written with a TTL
- ``reaseq:user:{<user_id>}:event_ids`` -> sorted set of the IDs of the user's newest appended
  events, scored by event timestamp (Unix s), so a replayed event is not appended twice

Item-vector keys carry no hash tag: they spread over the cluster's slots, and a request's
candidates are read with one MGET per slot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

PREFIX: Final = "reaseq"
ITEM_SEPARATOR: Final = "\x1f"
VECTOR_DTYPE: Final = np.dtype("<f2")
TIMESTAMP_DTYPE: Final = np.dtype("<i8")
EVENT_DTYPE: Final = np.dtype("u1")

ACTIVE_BUNDLE: Final = f"{PREFIX}:active_bundle"

# fields of the sequence and generated-behaviour hashes
SEQ_ITEMS: Final = "items"
SEQ_EVENTS: Final = "events"
SEQ_TIMESTAMPS: Final = "ts"
GEN_VECTORS: Final = "vectors"
GEN_ITEMS: Final = "items"
GEN_VERSION: Final = "gbr_version"
GEN_CREATED_AT: Final = "created_at"


_ITEM_KEYS: Final = f"{PREFIX}:item:"
_USER_KEYS: Final = f"{PREFIX}:user:"
_SEQUENCE_VECTORS_MARK: Final = ":seqvec:"
#: SCAN patterns of every key written per bundle version: item vectors, sequence-vector copies.
VERSIONED_KEY_PATTERNS: Final = (f"{_ITEM_KEYS}*", f"{_USER_KEYS}*{_SEQUENCE_VECTORS_MARK}*")


def item_vector_key(bundle_version: str, item_id: str) -> str:
    return f"{_ITEM_KEYS}{bundle_version}:{item_id}"


def user_sequence_key(user_id: str) -> str:
    return f"{PREFIX}:user:{{{user_id}}}:seq"


def user_sequence_vectors_key(user_id: str, bundle_version: str) -> str:
    return f"{_USER_KEYS}{{{user_id}}}{_SEQUENCE_VECTORS_MARK}{bundle_version}"


def key_bundle_version(key: str) -> str | None:
    """The bundle version a per-version key (item vector, sequence-vector copy) belongs to; None
    for every other key. A version holds no ``:``, so an item ID may."""
    if key.startswith(_ITEM_KEYS):
        version, separator, _item = key[len(_ITEM_KEYS) :].partition(":")
        return version if separator else None
    if key.startswith(_USER_KEYS) and _SEQUENCE_VECTORS_MARK in key:
        return key.rsplit(_SEQUENCE_VECTORS_MARK, 1)[1]
    return None


def generated_behaviours_key(user_id: str) -> str:
    return f"{PREFIX}:user:{{{user_id}}}:gen"


def user_event_ids_key(user_id: str) -> str:
    return f"{PREFIX}:user:{{{user_id}}}:event_ids"


def encode_vectors(vectors: npt.NDArray[np.floating]) -> bytes:
    return np.ascontiguousarray(vectors, dtype=VECTOR_DTYPE).tobytes()


def decode_vectors(raw: bytes, dim: int) -> npt.NDArray[np.float32]:
    """Decode ``n x dim`` float16 bytes to float32; raises ``ValueError`` on a bad length."""
    if len(raw) % (dim * VECTOR_DTYPE.itemsize):
        raise ValueError(f"vector block of {len(raw)} bytes is not a multiple of d={dim} float16")
    return np.frombuffer(raw, dtype=VECTOR_DTYPE).reshape(-1, dim).astype(np.float32)


SEQUENCE_VECTORS_TAG: Final = b"sv1:"
_DIGEST_BYTES: Final = 16


def sequence_digest(item_ids: Sequence[str]) -> bytes:
    """What a sequence-vector copy is checked against: a digest of the sequence's item IDs."""
    joined = ITEM_SEPARATOR.join(item_ids).encode()
    return hashlib.blake2b(joined, digest_size=_DIGEST_BYTES).digest()


def encode_sequence_vectors(item_ids: Sequence[str], vectors: npt.NDArray[np.floating]) -> bytes:
    """The ``seqvec`` value of a sequence with ``item_ids`` and their vectors ``[L, d]``."""
    if len(item_ids) != len(vectors):
        raise ValueError(f"{len(item_ids)} behaviours, {len(vectors)} vectors")
    return SEQUENCE_VECTORS_TAG + sequence_digest(item_ids) + encode_vectors(vectors)


def decode_sequence_vectors(
    raw: bytes, item_ids: Sequence[str], dim: int
) -> npt.NDArray[np.float32] | None:
    """The vectors of ``raw`` when it was written for exactly ``item_ids``; else None (another
    sequence, an untagged copy of an older layout, or a malformed value)."""
    header = len(SEQUENCE_VECTORS_TAG) + _DIGEST_BYTES
    if not raw.startswith(SEQUENCE_VECTORS_TAG) or raw[len(SEQUENCE_VECTORS_TAG) : header] != (
        sequence_digest(item_ids)
    ):
        return None
    try:
        vectors = decode_vectors(raw[header:], dim)
    except ValueError:
        return None
    return vectors if len(vectors) == len(item_ids) else None


def encode_item_ids(item_ids: list[str]) -> bytes:
    return ITEM_SEPARATOR.join(item_ids).encode()


def decode_item_ids(raw: bytes) -> list[str]:
    return raw.decode().split(ITEM_SEPARATOR) if raw else []
