"""A simulated online experiment on the synthetic world, through the real service.

One synthetic world (a preset and a seed), two bundles trained on its logs: the ID-only ranker
(the control arm) and the ranker that fuses item IDs with their knowledge vectors (the
treatment; no generated behaviours, so both arms read the same user snapshot). The service runs
them as two arms with 50/50 sticky assignment, and a shadow arm re-ranking every request with
the treatment's bundle. Every user of the world sends requests whose candidates the world's
exposure draws, scored as of the end of the logs; the world's shoppers click on what the
answering arm shows (their click probability times the examination of the position,
:class:`offline.data.synthetic.ClickModel`) and order some of what they click; the clicks and
orders go to ``POST /v1/outcomes``. The prediction log is then read, joined and reported per
arm, and replayed offline with both bundles. The same traffic against two arms on one bundle
(A/A) shows what "no difference" looks like.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_export.evaluate import evaluate
from model_export.experiment_replay import ReplayArm, ReplayReport, replay
from model_export.local_service import JsonClient, local_service
from model_export.pipeline import (
    ID_ONLY,
    MODEL,
    VARIANTS,
    TrainingRun,
    encode_items,
    export_run,
    train_variant,
)
from model_export.train import TrainConfig
from offline.data.canonical import Dataset
from offline.data.synthetic import ClickModel, SyntheticConfig, generate_with_truth
from offline.experiments import (
    Answer,
    ExperimentReport,
    ReportSettings,
    experiment_report,
    join,
    read_folder,
)
from offline.experiments.plot import plot_report
from offline.publish.sequences import latest_sequences
from offline.publish.stores import publish_embedded
from service.contracts.bundle_root import activate, record_user_snapshot
from service.contracts.manifest import read_manifest

log = logging.getLogger(__name__)

CONTROL, TREATMENT, SHADOW = "id_only", "knowledge", "knowledge-shadow"
AA_ARMS = ("knowledge-a", "knowledge-b")
#: Requests ranked before their clicks are drawn and sent in one POST /v1/outcomes.
BLOCK = 200


@dataclass(frozen=True)
class SimulationSpec:
    size: str = "small"
    seed: int = 0
    epochs: int = 2
    #: Torch threads while training (None: one per core).
    threads: int | None = None
    requests_per_user: int = 3
    candidates: int = 30
    top_k: int = 10
    positions: int = 5
    replicates: int = 1000


@dataclass
class SimulationRun:
    spec: SimulationSpec
    ab: ExperimentReport
    aa: ExperimentReport
    replay: ReplayReport
    traffic: dict[str, dict[str, int]]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec": asdict(self.spec),
            "arms": {"control": CONTROL, "treatment": TREATMENT, "shadow": SHADOW},
            "ab": self.ab.as_dict(),
            "aa": self.aa.as_dict(),
            "replay": self.replay.as_dict(),
            "traffic": self.traffic,
            "seconds": self.seconds,
        }


def build_arm_bundles(dataset: Dataset, spec: SimulationSpec, out: Path) -> dict[str, Path]:
    """The ID-only and the knowledge ranker as bundles under ``out/bundles``, each with the
    users' sequences recorded as its embedded snapshot; the control is made current."""
    semantic = encode_items(dataset.catalogue, seed=spec.seed)
    config = TrainConfig(epochs=spec.epochs, seed=spec.seed, threads=spec.threads, progress=False)
    paths: dict[str, Path] = {}
    snapshot: Path | None = None
    for arm, variant in ((CONTROL, ID_ONLY), (TREATMENT, MODEL)):
        ranker = train_variant(dataset, semantic, config, VARIANTS[variant], None)
        run = TrainingRun(ranker, semantic.encoder, {variant: evaluate(ranker, dataset)})
        path = export_run(run, dataset, out / "bundles", version=f"sim-{arm}-s{spec.seed}")
        if snapshot is None:
            max_len = read_manifest(path).max_lengths.sequence
            sequences = latest_sequences(dataset, max_len)
            snapshot = publish_embedded(sequences, out / "users.npz")
        record_user_snapshot(path, snapshot)
        paths[arm] = path
        log.info("%s arm: bundle %s trained in %.0f s", arm, path.name, ranker.train_seconds)
    activate(paths[CONTROL])
    return paths


def experiment_config(name: str, arms: dict[str, Path], shadows: dict[str, Path]) -> dict[str, Any]:
    """The body of ``PUT /v1/admin/experiment``: the arms in equal shares."""
    share = 1.0 / len(arms)
    return {
        "name": name,
        "version": 1,
        "arms": [{"name": a, "bundle": p.name, "share": share} for a, p in arms.items()],
        "shadows": [{"name": s, "bundle": p.name} for s, p in shadows.items()],
    }


class Shoppers:
    """The world's users sending rank requests and acting on the answers."""

    def __init__(self, world: ClickModel, dataset: Dataset, spec: SimulationSpec) -> None:
        self.world, self.spec = world, spec
        self.item_ids = dataset.catalogue.item_ids
        self.rows = {item: row for row, item in enumerate(self.item_ids.tolist())}
        self.user_ids = dataset.user_ids
        self.as_of = int(dataset.meta["end_ts"])
        config = world.config
        #: Orders per click: the world's carts per click times purchases per cart.
        self.order_rate = config.cart_rate * config.purchase_rate

    def visit(self, client: JsonClient, experiment: str, seed: int) -> dict[str, int]:
        """Every user's requests in a shuffled order; returns answers per arm and counts."""
        rng = np.random.default_rng(seed)
        users = rng.permutation(
            np.repeat(np.arange(len(self.user_ids)), self.spec.requests_per_user)
        )
        ts = np.full(len(users), self.as_of)
        offered = self.world.candidates(users, ts, self.spec.candidates, rng)
        counts: dict[str, int] = {}
        for first in range(0, len(users), BLOCK):
            rows = np.arange(first, min(first + BLOCK, len(users)))
            answers = [self._rank(client, experiment, users[r], offered[r]) for r in rows]
            for answer in answers:
                counts[answer["arm"]] = counts.get(answer["arm"], 0) + 1
                counts["degraded"] = counts.get("degraded", 0) + bool(answer["degraded"])
            self._act(client, users[rows], answers, rng, counts)
        return counts

    def _rank(
        self, client: JsonClient, experiment: str, user: int, candidates: np.ndarray
    ) -> dict[str, Any]:
        answer: dict[str, Any] = client.post(
            "/v1/rank",
            {
                "user_id": str(self.user_ids[user]),
                "candidates": self.item_ids[candidates].tolist(),
                "top_k": self.spec.top_k,
                "as_of": self.as_of,
            },
        )
        if answer.get("experiment") != experiment:
            raise RuntimeError(
                f"the service answered outside experiment {experiment!r} "
                f"(experiment={answer.get('experiment')!r}); see its log"
            )
        return answer

    def _act(
        self,
        client: JsonClient,
        users: np.ndarray,
        answers: list[dict[str, Any]],
        rng: np.random.Generator,
        counts: dict[str, int],
    ) -> None:
        """Clicks and orders on the pages shown, sent to ``POST /v1/outcomes``."""
        pages = np.array([[self.rows[i["item_id"]] for i in a["items"]] for a in answers])
        clicked = self.world.clicks(users, pages, rng)
        ordered = clicked & (rng.random(clicked.shape) < self.order_rate)
        outcomes = []
        for kind, hits in (("click", clicked), ("order", ordered)):
            for row, position in zip(*np.nonzero(hits), strict=True):
                answer = answers[row]
                outcomes.append(
                    {
                        "request_id": answer["request_id"],
                        "item_id": answer["items"][position]["item_id"],
                        "outcome": kind,
                        "user_id": str(self.user_ids[users[row]]),
                    }
                )
        if outcomes:
            accepted = client.post("/v1/outcomes", {"outcomes": outcomes})
            counts["outcomes_sent"] = counts.get("outcomes_sent", 0) + len(outcomes)
            counts["outcomes_dropped"] = counts.get("outcomes_dropped", 0) + accepted["dropped"]


def run_experiment(
    config: dict[str, Any], shoppers: Shoppers, bundles_root: Path, folder: Path, seed: int
) -> dict[str, int]:
    """Serve ``config`` (from its file) with its prediction log in ``folder/predictions``, send
    the shoppers' traffic and stop the service (which flushes the log)."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "experiment.json"
    config_path.write_text(json.dumps(config, indent=2))
    settings = {
        "bundle_root": str(bundles_root),
        "store": "embedded",
        "experiment_file": str(config_path),
        "prediction_log_dir": str(folder / "predictions"),
        "prediction_log_sink": "file",
        "log_level": "warning",
        "access_log": "false",
    }
    with local_service(settings, folder / "service.log") as port:
        client = JsonClient(port)
        try:
            return shoppers.visit(client, config["name"], seed)
        finally:
            client.close()


def simulate(spec: SimulationSpec, out: Path) -> SimulationRun:
    """Build the world and the two bundles, run the A/B and the A/A experiment through the
    service, report both and replay the A/B log; writes the reports and plots under ``out``."""
    started = time.perf_counter()
    config = SyntheticConfig.preset(spec.size, seed=spec.seed)
    dataset, truth = generate_with_truth(config)
    dataset.save(out / "data")  # what `reaseq experiment replay --data` reads
    bundles = build_arm_bundles(dataset, spec, out)
    shoppers = Shoppers(ClickModel.of(config, truth), dataset, spec)
    runs = {
        "ab": experiment_config(f"sim-ab-s{spec.seed}", bundles, {SHADOW: bundles[TREATMENT]}),
        "aa": experiment_config(
            f"sim-aa-s{spec.seed}", dict.fromkeys(AA_ARMS, bundles[TREATMENT]), {}
        ),
    }
    reports: dict[str, ExperimentReport] = {}
    traffic: dict[str, dict[str, int]] = {}
    answers: dict[str, list[Answer]] = {}
    for offset, (key, body) in enumerate(runs.items()):
        folder = out / key
        traffic[key] = run_experiment(body, shoppers, out / "bundles", folder, spec.seed + offset)
        joined = join(read_folder(folder / "predictions"))
        settings = ReportSettings(
            control=body["arms"][0]["name"],
            positions=spec.positions,
            replicates=spec.replicates,
            seed=spec.seed,
        )
        reports[key] = experiment_report(joined, settings)
        answers[key] = joined.answers
        plot_report(reports[key], out / f"ctr-{key}.png")
    arms = [ReplayArm(arm, path) for arm, path in bundles.items()]
    replayed = replay(arms, dataset, answers["ab"], as_of=shoppers.as_of)
    seconds = time.perf_counter() - started
    run = SimulationRun(spec, reports["ab"], reports["aa"], replayed, traffic, seconds)
    (out / "simulation.json").write_text(json.dumps(run.as_dict(), indent=2) + "\n")
    return run
