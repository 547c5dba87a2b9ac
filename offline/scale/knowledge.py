"""Knowledge extraction on Ray Data: the catalogue's shards described in parallel.

The offline backend is a pure function of the catalogue (:meth:`OfflineKnowledgeBackend.describe`,
the fast path that writes what the team writes), so it runs as plain ``map_batches`` tasks with
no cache. The LLM backend runs on a pool of actors (:mod:`offline.scale.llm_pool`), paced and
cached. Either way the records come back in catalogue order, the same records
:func:`offline.knowledge.runner.describe_catalogue` writes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import ray.data

from offline.data.canonical import Catalogue
from offline.knowledge.metadata_backend import OfflineKnowledgeBackend
from offline.knowledge.run_report import KnowledgeRunReport
from offline.knowledge.runner import BackendKind
from offline.llm.settings import LLMSettings
from offline.scale.catalogue_shards import catalogue_rows, shard_catalogue
from offline.scale.llm_pool import LLMDescriber, merged_report
from offline.scale.session import WorkerPool
from offline.scale.shards import collected, concatenated, shard_arrays, shard_dataset


def describe_offline(batch: pa.Table) -> dict[str, npt.NDArray[Any]]:
    """A ``map_batches`` function: the offline backend's records of each shard, as JSON."""
    parts = []
    backend = OfflineKnowledgeBackend()
    for row in range(len(batch)):
        shard = shard_arrays(batch, row)
        records = backend.describe(shard_catalogue(shard))
        parts.append(
            {
                "row": shard["start"] + np.arange(len(records), dtype=np.int64),
                "record": np.asarray([r.model_dump_json() for r in records], dtype=object),
            }
        )
    return concatenated(parts)


def describe_lines_ray(
    catalogue: Catalogue,
    kind: BackendKind = BackendKind.offline,
    cache_path: Path | None = None,
    settings: LLMSettings | None = None,
    *,
    pool: WorkerPool | None = None,
    requests_per_s: float | None = None,
) -> tuple[list[str], KnowledgeRunReport]:
    """Each catalogue row's record as a JSON line, in catalogue order, and the run's report.

    ``requests_per_s`` caps the LLM calls started per second over the whole pool (each of its
    workers takes an equal share); ``cache_path`` is the LLM answers' cache (the offline backend
    needs none)."""
    pool = pool or WorkerPool()
    started = time.perf_counter()
    if len(catalogue) == 0:
        return [], KnowledgeRunReport(backend=_identity(kind, settings))
    shards = shard_dataset(catalogue_rows(catalogue, pool.shard_rows))
    if kind is BackendKind.offline:
        described = shards.map_batches(
            describe_offline,
            batch_size=1,
            batch_format="pyarrow",
            compute=ray.data.TaskPoolStrategy(size=pool.size(shards.count())),
        )
    else:
        described = _llm_stage(shards, settings or LLMSettings(), cache_path, pool, requests_per_s)
    lines: list[str] = [""] * len(catalogue)
    reports: list[str] = []
    for batch in collected(described):
        for row, line in zip(batch["row"].tolist(), batch["record"].tolist(), strict=True):
            lines[row] = line
        reports += [text for text in batch.get("report", np.zeros(0)).tolist() if text]
    seconds = time.perf_counter() - started
    identity = _identity(kind, settings)
    return lines, merged_report(identity, len(catalogue), reports, seconds)


def _llm_stage(
    shards: ray.data.Dataset,
    settings: LLMSettings,
    cache_path: Path | None,
    pool: WorkerPool,
    requests_per_s: float | None,
) -> ray.data.Dataset:
    if not settings.model:
        raise ValueError("set the chat model (REASEQ_LLM_MODEL) to use the llm backend")
    workers = pool.size(shards.count())
    return shards.map_batches(
        LLMDescriber,
        batch_size=1,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={
            "settings": settings,
            "cache_path": None if cache_path is None else str(cache_path),
            "requests_per_s": None if requests_per_s is None else requests_per_s / workers,
            # As the single-process runner: two items in flight per endpoint slot.
            "concurrency": 2 * settings.max_concurrency,
        },
    )


def _identity(kind: BackendKind, settings: LLMSettings | None) -> str:
    if kind is BackendKind.offline:
        return OfflineKnowledgeBackend().agent_identity
    return f"llm:{(settings or LLMSettings()).model}"
