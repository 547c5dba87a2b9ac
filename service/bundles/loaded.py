"""A loaded bundle: verified manifest, onnxruntime sessions and the memory-mapped item table.

The sessions run on the execution providers the service was configured with
(``service.device.plan``): the CPU provider on the CPU path; ONNX Runtime's CUDA provider, on the
stream the device path computes on, where ``onnxruntime-gpu`` is installed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from service.contracts import graphs
from service.contracts.manifest import (
    BundleIntegrityError,
    BundleManifest,
    read_manifest,
    verify_files,
)

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
#: An onnxruntime execution provider: its name, or its name and options.
Provider: TypeAlias = str | tuple[str, dict[str, str]]
CPU_PROVIDERS: tuple[Provider, ...] = ("CPUExecutionProvider",)

#: Inputs each graph may declare and outputs it must produce (service.contracts.graphs).
_SIGNATURES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    graphs.USER_ENCODER: (
        frozenset(
            {
                graphs.SEQUENCE_VECTORS,
                graphs.SEQUENCE_EVENTS,
                graphs.SEQUENCE_GAPS,
                graphs.GENERATED_VECTORS,
            }
        ),
        frozenset(
            {graphs.REAL_KEYS, graphs.REAL_VALUES, graphs.GENERATED_KEYS, graphs.GENERATED_VALUES}
        ),
    ),
    graphs.CANDIDATE_ENCODER: (
        frozenset({graphs.CANDIDATE_VECTORS}),
        frozenset({graphs.REAL_QUERIES, graphs.GENERATED_QUERIES}),
    ),
    graphs.SCORER: (
        frozenset({graphs.CANDIDATE_VECTORS, graphs.REAL_POOLED, graphs.GENERATED_POOLED}),
        frozenset({graphs.SCORES}),
    ),
    graphs.FULL: (
        frozenset(
            {
                graphs.CANDIDATE_VECTORS,
                graphs.SEQUENCE_VECTORS,
                graphs.SEQUENCE_EVENTS,
                graphs.SEQUENCE_GAPS,
                graphs.GENERATED_VECTORS,
                graphs.SEQUENCE_MASK,
                graphs.GENERATED_MASK,
            }
        ),
        frozenset({graphs.SCORES}),
    ),
}
_WARM_UP_DIM = 2  # size given to every symbolic axis when warming a graph up
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


class ItemTable:
    """Item vectors by ID, memory-mapped from the bundle (or held as float32, see
    :func:`load_item_table`); unknown IDs get the default vector."""

    def __init__(
        self,
        item_ids: npt.NDArray[np.str_],
        vectors: npt.NDArray[np.floating],
        default: FloatArray,
        in_memory: bool = False,
    ) -> None:
        self.ids = item_ids
        self.in_memory = in_memory
        """Whether the vectors are a float32 copy in this process rather than the mapped file."""
        # A plain array over the same memory: indexing a ``np.memmap`` pays Python-level hooks
        # (``__getitem__``, ``__array_finalize__``) on every request.
        self.vectors = np.asarray(vectors)
        self._rows = {item: row for row, item in enumerate(item_ids.tolist())}
        self.default_vector = default

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    @property
    def dim(self) -> int:
        return int(self.default_vector.shape[0])

    def rows(self, item_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Table rows of ``item_ids``; -1 for an unknown ID. ``map`` runs the dictionary lookups
        in C: no Python-level loop per item."""
        return np.fromiter(map(self._rows.get, item_ids, repeat(-1)), np.int64, len(item_ids))

    def vectors_at(self, rows: npt.NDArray[np.int64]) -> tuple[FloatArray, BoolArray]:
        """Float32 vectors ``[n, d]`` of table rows (-1: the default vector); which are known."""
        known = rows >= 0
        vectors = np.empty((len(rows), self.dim), np.float32)
        if known.all():
            if self.vectors.dtype == np.float32:  # a gather straight into the output
                self.vectors.take(rows, axis=0, out=vectors)
            else:
                vectors[:] = self.vectors[rows]
        else:
            vectors[:] = self.default_vector
            if known.any():
                vectors[known] = self.vectors[rows[known]]
        return vectors, known

    def lookup(self, item_ids: Sequence[str]) -> tuple[FloatArray, BoolArray]:
        """Vectors ``[n, d]`` float32 and whether each ID is in the table."""
        return self.vectors_at(self.rows(item_ids))


@dataclass(frozen=True)
class LoadedBundle:
    """An immutable, verified bundle ready to score."""

    directory: Path
    manifest: BundleManifest
    sessions: Mapping[str, ort.InferenceSession]
    items: ItemTable

    @property
    def version(self) -> str:
        return self.manifest.version

    @classmethod
    def load(
        cls,
        bundle_dir: Path,
        intra_op_threads: int = 1,
        providers: Sequence[Provider] = CPU_PROVIDERS,
        float32_items_max_bytes: int = 0,
    ) -> LoadedBundle:
        """Read and verify a bundle, its sessions on ``providers`` (in order of preference);
        raises :class:`BundleIntegrityError` when it is unsound. An item table of at most
        ``float32_items_max_bytes`` as float32 is held in memory as float32."""
        manifest = read_manifest(bundle_dir)
        _check_listed(manifest)
        verify_files(bundle_dir, manifest)
        options = _session_options(intra_op_threads)
        sessions = {
            name: ort.InferenceSession(
                str(bundle_dir / manifest.graphs[name]),
                sess_options=options,
                providers=list(providers),
            )
            for name in graphs.GRAPH_NAMES
        }
        _check_signatures(
            manifest.version, sessions, slotted=manifest.dimensions.generated_slots > 0
        )
        items = load_item_table(bundle_dir, manifest, float32_items_max_bytes)
        log.info(
            "loaded bundle %s: %d items, d=%d, %s",
            manifest.version,
            len(items),
            items.dim,
            "float32 in memory" if items.in_memory else f"{items.vectors.dtype} memory-mapped",
        )
        return cls(bundle_dir, manifest, sessions, items)

    def run(self, graph: str, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph; feeds the graph does not declare are ignored."""
        session = self.sessions[graph]
        inputs = {i.name: feeds[i.name] for i in session.get_inputs()}
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, inputs), strict=True))

    def warm_up(self) -> None:
        """Run every graph once on small shapes so the first request pays no set-up cost."""
        for name, session in self.sessions.items():
            feeds = {
                i.name: np.zeros(_concrete_shape(i.shape), _ORT_DTYPES.get(i.type, np.float32))
                for i in session.get_inputs()
            }
            session.run(None, feeds)
            log.debug("warmed up graph %s", name)


def _concrete_shape(shape: Sequence[int | str | None]) -> tuple[int, ...]:
    return tuple(dim if isinstance(dim, int) and dim > 0 else _WARM_UP_DIM for dim in shape)


def _session_options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    # The cores are shared with the event loop and the attention threads: a pool thread that
    # spins between graph nodes steals them. (With one intra-op thread there is no pool.)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


def _check_listed(manifest: BundleManifest) -> None:
    """Every file the service reads must be listed (and so checksummed) in the manifest."""
    missing_graphs = [name for name in graphs.GRAPH_NAMES if name not in manifest.graphs]
    if missing_graphs:
        raise BundleIntegrityError(
            f"bundle {manifest.version}: manifest names no file for graphs {missing_graphs}"
        )
    table = manifest.item_table
    needed = [*manifest.graphs.values(), table.ids_file, table.vectors_file]
    if manifest.module_weights is not None:
        needed.append(manifest.module_weights.file)
    unlisted = [name for name in needed if name not in manifest.files]
    if unlisted:
        raise BundleIntegrityError(
            f"bundle {manifest.version}: files without a checksum in the manifest: {unlisted}"
        )


def _check_signatures(
    version: str, sessions: Mapping[str, ort.InferenceSession], slotted: bool = False
) -> None:
    """Refuse graphs whose inputs or outputs drifted from the contract, before any request. The
    user encoder of a ``slotted`` bundle (``dimensions.generated_slots`` > 0) must take the
    generated behaviours' slots, and only its user encoder may."""
    for name, session in sessions.items():
        allowed_inputs, required_outputs = _SIGNATURES[name]
        inputs = {i.name for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        if name == graphs.USER_ENCODER and slotted:
            allowed_inputs = allowed_inputs | {graphs.GENERATED_SLOTS}
            if graphs.GENERATED_SLOTS not in inputs:
                raise BundleIntegrityError(
                    f"bundle {version}: its manifest gives the generated block slot vectors "
                    f"(dimensions.generated_slots) but graph {name} takes no "
                    f"{graphs.GENERATED_SLOTS} input; export the bundle again"
                )
        if not inputs <= allowed_inputs or not required_outputs <= outputs:
            raise BundleIntegrityError(
                f"bundle {version}: graph {name} has inputs {sorted(inputs)} and outputs "
                f"{sorted(outputs)}; the contract allows inputs {sorted(allowed_inputs)} and "
                f"needs outputs {sorted(required_outputs)}"
            )


def load_item_table(
    bundle_dir: Path, manifest: BundleManifest, float32_max_bytes: int = 0
) -> ItemTable:
    """The bundle's item table, checked against the manifest: memory-mapped (shared by every
    process that maps the bundle), or, when it takes at most ``float32_max_bytes`` as float32,
    copied into memory as float32, so that a request's rows need no conversion."""
    table = manifest.item_table
    dim = manifest.dimensions.item_dim
    ids = np.load(bundle_dir / table.ids_file, mmap_mode="r", allow_pickle=False)
    vectors = np.load(bundle_dir / table.vectors_file, mmap_mode="r", allow_pickle=False)
    default = np.asarray(table.default_vector, np.float32)
    if ids.dtype.kind != "U" or ids.shape != (table.rows,):
        raise BundleIntegrityError(
            f"bundle {manifest.version}: {table.ids_file} must hold {table.rows} str IDs, "
            f"found dtype {ids.dtype} shape {ids.shape}"
        )
    if vectors.shape != (table.rows, dim) or vectors.dtype != np.dtype(table.dtype):
        raise BundleIntegrityError(
            f"bundle {manifest.version}: {table.vectors_file} must be {table.dtype} "
            f"[{table.rows}, {dim}], found {vectors.dtype} {list(vectors.shape)}"
        )
    if default.shape != (dim,):
        raise BundleIntegrityError(
            f"bundle {manifest.version}: default_vector has {default.shape[0]} values, not {dim}"
        )
    if vectors.dtype != np.float32 and vectors.shape[0] * vectors.shape[1] * 4 <= float32_max_bytes:
        return ItemTable(np.asarray(ids), np.asarray(vectors, np.float32), default, in_memory=True)
    return ItemTable(np.asarray(ids), vectors, default)
