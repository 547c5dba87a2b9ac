"""The benchmark's bundle, users and requests, built from a trained demo ranker.

The demo ranker is exported again with the workloads' maximum lengths (the graphs are
length-agnostic; the manifest caps what serving feeds them), and an embedded user snapshot holds
users with exactly the workloads' behaviour counts: real sequences of random catalogue items and
generated blocks of the bundle's own item vectors. The naive baseline loads the same checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.workloads import Workload
from model_export.bundle import export_bundle
from model_export.pipeline import TrainingRun
from offline.data.canonical import Dataset
from service.bundles.loaded import load_item_table
from service.contracts.bundle_root import write_current
from service.contracts.manifest import GeneratorInfo, read_manifest
from service.stores.snapshot import GeneratedBlocks, write_user_snapshot

BENCH_VERSION = "bench"
USERS_PER_WORKLOAD = 200
_GENERATOR = GeneratorInfo(version="bench-synthetic")
_EVENT_TYPES = 3
_NOW = 1_790_000_000


@dataclass(frozen=True)
class BenchFixture:
    root: Path
    model_dir: Path

    @property
    def bundles(self) -> Path:
        return self.root / "bundles"

    @property
    def bundle_dir(self) -> Path:
        return self.bundles / BENCH_VERSION

    @property
    def users_path(self) -> Path:
        return self.root / "users.npz"

    def requests_path(self, workload: Workload) -> Path:
        return self.root / f"requests-{workload.name}.jsonl"

    def requests(self, workload: Workload) -> list[bytes]:
        return [line.encode() for line in self.requests_path(workload).read_text().splitlines()]

    def user_id(self, workload: Workload, n: int) -> str:
        return f"{workload.name.lower()}-u{n}"


def build_fixture(
    root: Path, model_dir: Path, data_dir: Path, workloads: list[Workload], seed: int = 0
) -> BenchFixture:
    """Write the bench bundle, users and request bodies under ``root`` (reused when present
    and long enough for ``workloads``)."""
    fixture = BenchFixture(root, model_dir)
    exported = False
    if not fixture.bundle_dir.is_dir() or not bundle_covers(fixture.bundle_dir, workloads):
        # A bundle left by a run of shorter workloads would cut their histories short and
        # serve less work than the workload names: export again, with users to match.
        shutil.rmtree(fixture.bundles, ignore_errors=True)
        _export(fixture, data_dir, workloads)
        exported = True
    if (
        exported
        or not fixture.users_path.is_file()
        or any(not fixture.requests_path(w).is_file() for w in workloads)
    ):
        _write_users_and_requests(fixture, workloads, np.random.default_rng(seed))
    return fixture


def bundle_covers(bundle_dir: Path, workloads: list[Workload]) -> bool:
    """Whether the bundle scores every behaviour of each workload (its maximum lengths are at
    least the workloads' real and generated counts)."""
    lengths = read_manifest(bundle_dir).max_lengths
    return all(w.real <= lengths.sequence and w.generated <= lengths.generated for w in workloads)


def _export(fixture: BenchFixture, data_dir: Path, workloads: list[Workload]) -> None:
    export_version(fixture, data_dir, workloads, BENCH_VERSION)
    write_current(fixture.bundles, BENCH_VERSION)


def export_version(
    fixture: BenchFixture, data_dir: Path, workloads: list[Workload], version: str
) -> Path:
    """The fixture's ranker exported as bundle ``version`` beside the bench bundle (the same
    weights and shapes: a second bundle for serving two side by side)."""
    run = TrainingRun.load(fixture.model_dir)
    config = dataclasses.replace(
        run.ranker.config,
        max_seq_len=max(w.real for w in workloads),
        generated=max(w.generated for w in workloads),
    )
    ranker = dataclasses.replace(run.ranker, config=config)
    return export_bundle(
        ranker,
        Dataset.load(data_dir),
        run.semantic_vectors,
        run.encoder,
        run.metrics,
        fixture.bundles,
        version,
        generator=_GENERATOR,
    )


def _write_users_and_requests(
    fixture: BenchFixture, workloads: list[Workload], rng: np.random.Generator
) -> None:
    manifest = read_manifest(fixture.bundle_dir)
    table = load_item_table(fixture.bundle_dir, manifest)
    catalogue = np.asarray(table.ids)
    users, offsets, items, events, ts = [], [0], [], [], []
    gen_users, gen_offsets, gen_items, gen_vectors = [], [0], [], []
    for workload in workloads:
        for n in range(USERS_PER_WORKLOAD):
            users.append(fixture.user_id(workload, n))
            picked = rng.integers(0, len(catalogue), workload.real)
            items.extend(catalogue[picked].tolist())
            events.extend(rng.integers(0, _EVENT_TYPES, workload.real).tolist())
            ts.extend(np.sort(_NOW - rng.integers(60, 90 * 86_400, workload.real)).tolist())
            offsets.append(len(items))
            gen_users.append(users[-1])
            generated = rng.choice(len(catalogue), workload.generated, replace=False)
            gen_items.extend(catalogue[generated].tolist())
            gen_vectors.append(np.asarray(table.vectors[generated], np.float16))
            gen_offsets.append(len(gen_items))
        bodies = []
        for n in range(USERS_PER_WORKLOAD):
            candidates = rng.choice(len(catalogue), workload.candidates, replace=False)
            bodies.append(
                json.dumps(
                    {
                        "user_id": fixture.user_id(workload, n),
                        "candidates": catalogue[candidates].tolist(),
                        "top_k": 100,
                    }
                )
            )
        fixture.requests_path(workload).write_text("\n".join(bodies) + "\n")
    write_user_snapshot(
        fixture.users_path,
        users,
        offsets,
        items,
        np.asarray(events) + 1,
        ts,
        GeneratedBlocks(
            np.asarray(gen_users),
            np.asarray(gen_offsets),
            np.asarray(gen_items),
            np.concatenate(gen_vectors),
            _GENERATOR.version,
        ),
    )
