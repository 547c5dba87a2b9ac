"""A dataset to a bundle that serves its users: what ``reaseq build`` runs.

Knowledge records from the agent team (cached) -> semantic vectors -> the ranker and its
baselines -> a bundle (with its parity checked) -> the users' latest sequences published to the
embedded snapshot or Redis -> the bundle made current. Every intermediate lands in the work
folder (``data/``, ``knowledge.sqlite``, ``knowledge.jsonl``, ``model/``, ``users.npz``), so the
steps can be rerun apart: ``reaseq train --knowledge <work>/knowledge.jsonl`` retrains on the
same records.

With the embedded store, the bundle root names the snapshot beside the bundle
(:mod:`service.contracts.bundle_root`), so ``reaseq serve`` on that root serves these users
without further settings.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from model_export.parity import check_parity
from model_export.pipeline import TrainingRun, encode_knowledge, export_run, train_run
from model_export.train import TrainConfig
from offline.data.canonical import Dataset
from offline.encode import TextEncoder
from offline.knowledge.runner import BackendKind, describe_catalogue, write_records
from offline.publish.sequences import latest_sequences
from offline.publish.stores import publish_embedded, publish_redis
from service.contracts.bundle_root import activate, record_user_snapshot
from service.stores.config import RedisStoreConfig

log = logging.getLogger(__name__)

DATA_DIR = "data"
KNOWLEDGE_CACHE = "knowledge.sqlite"
KNOWLEDGE_RECORDS = "knowledge.jsonl"
MODEL_DIR = "model"
USERS_SNAPSHOT = "users.npz"


class UserStore(StrEnum):
    embedded = "embedded"
    redis = "redis"


@dataclass(frozen=True)
class UserPublishing:
    """Where the users' sequences go: the embedded snapshot (default ``<work>/users.npz``) or
    Redis, with the bundle's item vectors under its version (a user Redis already holds keeps
    its live sequence, as with ``reaseq publish``)."""

    store: UserStore = UserStore.embedded
    users_path: Path | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False


@dataclass(frozen=True)
class BuildSpec:
    """Everything a build decides besides the dataset."""

    work: Path
    bundles: Path
    encoder: TextEncoder
    train: TrainConfig = field(default_factory=TrainConfig)
    backend: BackendKind = BackendKind.offline
    users: UserPublishing = field(default_factory=UserPublishing)
    #: Point ``CURRENT`` (and, with Redis, the active version) at the new bundle.
    activate: bool = True
    progress: bool = False

    @property
    def records_path(self) -> Path:
        return self.work / KNOWLEDGE_RECORDS


@dataclass(frozen=True)
class BuiltBundle:
    """What a build produced, and the environment of ``reaseq serve`` that serves it."""

    bundle: Path
    run: TrainingRun
    knowledge_summary: str
    parity: float
    users: int
    #: The embedded snapshot written (None with Redis).
    users_snapshot: Path | None
    serve_env: dict[str, str]

    def serve_command(self) -> str:
        """The shell line that serves this build."""
        env = " ".join(f"{name}={shlex.quote(value)}" for name, value in self.serve_env.items())
        return f"{env} reaseq serve".strip()


def build(dataset: Dataset, spec: BuildSpec) -> BuiltBundle:
    """Knowledge -> vectors -> train -> export -> publish the users -> activate."""
    dataset.save(spec.work / DATA_DIR)
    records, report = describe_catalogue(
        dataset.catalogue, spec.backend, spec.work / KNOWLEDGE_CACHE, progress=spec.progress
    )
    write_records(records, spec.records_path)
    log.info("knowledge: %s", report.summary())
    semantic = encode_knowledge(records, dataset.catalogue, spec.encoder)
    run = train_run(dataset, spec.train, semantic=semantic)
    run.save(spec.work / MODEL_DIR)
    bundle = export_run(run, dataset, spec.bundles)
    parity = check_parity(bundle)
    users, snapshot = _publish_users(dataset, run, bundle, spec)
    if spec.activate:
        activate(bundle)
    return BuiltBundle(
        bundle=bundle,
        run=run,
        knowledge_summary=report.summary(),
        parity=parity,
        users=users,
        users_snapshot=snapshot,
        serve_env=serve_environment(bundle, spec),
    )


def _publish_users(
    dataset: Dataset, run: TrainingRun, bundle: Path, spec: BuildSpec
) -> tuple[int, Path | None]:
    """Every user's latest sequence, as long as the bundle reads, into the chosen store."""
    sequences = latest_sequences(dataset, run.ranker.config.max_seq_len)
    target = spec.users
    if target.store is UserStore.embedded:
        snapshot = publish_embedded(sequences, target.users_path or spec.work / USERS_SNAPSHOT)
        record_user_snapshot(bundle, snapshot)
        return len(sequences), snapshot
    counts = publish_redis(
        sequences,
        bundle,
        RedisStoreConfig(url=target.redis_url, cluster=target.redis_cluster),
        activate=spec.activate,
    )
    return counts["users"], None


def serve_environment(bundle: Path, spec: BuildSpec) -> dict[str, str]:
    """The REASEQ_* variables under which ``reaseq serve`` serves ``bundle`` and its users."""
    env = {"REASEQ_BUNDLE_ROOT": str(bundle.parent.resolve())}
    if not spec.activate:
        env["REASEQ_BUNDLE_VERSION"] = bundle.name
    if spec.users.store is UserStore.redis:
        env["REASEQ_STORE"] = "redis"
        env["REASEQ_REDIS_URL"] = spec.users.redis_url
        if spec.users.redis_cluster:
            env["REASEQ_REDIS_CLUSTER"] = "true"
    return env
