"""A simulated online experiment on the synthetic world, through the real service.

One synthetic world (a preset and a seed), a behaviour generator trained on its events before
the split (as ``reaseq demo`` trains it) and three bundles trained on its logs: the ID-only
ranker (the control arm), the full model (the treatment: item IDs fused with their knowledge
vectors, attending over each user's generated behaviours) and the knowledge-fused ranker
without generated behaviours (a shadow arm re-ranking every request). Each bundle has its own
embedded user snapshot recorded beside it, which the service opens for it: the full bundle's
holds every user's sequence and generated block (the nearline job's, in that bundle's fused
item vectors), the others' the sequences only. The service runs control and treatment with
50/50 sticky assignment. Every user of the world sends requests whose candidates the world's
exposure draws, scored as of the end of the logs; the world's shoppers click on what the
answering arm shows (their click probability times the examination of the position,
:class:`offline.data.synthetic.ClickModel`) and order some of what they click; the clicks and
orders go to ``POST /v1/outcomes``. The prediction log is then read, joined and reported per
arm, and replayed offline with every bundle. The same traffic against two arms on the full
bundle (A/A) shows what "no difference" looks like.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_export.dataset import GeneratedBlocksLog
from model_export.evaluate import evaluate
from model_export.experiment_replay import ReplayArm, ReplayReport, replay
from model_export.local_service import JsonClient, local_service
from model_export.pipeline import (
    FULL,
    ID_ONLY,
    MODEL,
    VARIANTS,
    SemanticVectors,
    TrainingRun,
    encode_items,
    export_run,
    train_behaviour_generator,
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

CONTROL, TREATMENT, SHADOW = "id_only", "full", "knowledge-shadow"
AA_ARMS = ("full-a", "full-b")
#: The ablation variant (:data:`model_export.pipeline.VARIANTS`) behind each arm's bundle.
ARM_VARIANTS = {CONTROL: ID_ONLY, TREATMENT: FULL, SHADOW: MODEL}
#: Requests ranked before their clicks are drawn and sent in one POST /v1/outcomes.
BLOCK = 200


@dataclass(frozen=True)
class SimulationSpec:
    size: str = "small"
    seed: int = 0
    epochs: int = 2
    #: Generated behaviours per user (K) of the full model, and epochs of its generator (as
    #: ``reaseq demo`` builds them).
    generated: int = 16
    gbr_epochs: int = 2
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
    #: What the nearline job wrote into the full bundle's user snapshot.
    nearline: dict[str, object]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "spec": asdict(self.spec),
            "arms": {"control": CONTROL, "treatment": TREATMENT, "shadow": SHADOW},
            "variants": ARM_VARIANTS,
            "nearline": self.nearline,
            "ab": self.ab.as_dict(),
            "aa": self.aa.as_dict(),
            "replay": self.replay.as_dict(),
            "traffic": self.traffic,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class ArmBundles:
    """Each arm's bundle (the control made current), the generated blocks the full model was
    trained and evaluated with, and what the nearline job wrote into its user snapshot."""

    paths: dict[str, Path]
    generated: GeneratedBlocksLog
    nearline: dict[str, object]

    def replay_arms(self) -> list[ReplayArm]:
        """Every bundle, the ones that attend over generated behaviours with their blocks."""
        return [
            ReplayArm(arm, path, self.generated if _uses_generated(arm) else None)
            for arm, path in self.paths.items()
        ]


def _uses_generated(arm: str) -> bool:
    return VARIANTS[ARM_VARIANTS[arm]].uses_generated


def build_arm_bundles(dataset: Dataset, spec: SimulationSpec, out: Path) -> ArmBundles:
    """The generator (trained before the split, under ``out/gbr``) and every arm's bundle under
    ``out/bundles``, each with its own user snapshot recorded beside it: sequences, and for the
    full model every user's generated block in its fused item vectors."""
    semantic = encode_items(dataset.catalogue, seed=spec.seed)
    generator = train_behaviour_generator(
        dataset, semantic, k=spec.generated, epochs=spec.gbr_epochs, seed=spec.seed, out=out
    )
    config = TrainConfig(epochs=spec.epochs, seed=spec.seed, threads=spec.threads, progress=False)
    paths: dict[str, Path] = {}
    nearline: dict[str, object] = {}
    for arm in ARM_VARIANTS:
        generated = generator.log if _uses_generated(arm) else None
        paths[arm] = _export_arm(arm, dataset, semantic, config, generated, out, spec.seed)
        max_len = read_manifest(paths[arm]).max_lengths.sequence
        users = publish_embedded(latest_sequences(dataset, max_len), out / f"users-{arm}.npz")
        if generated is not None:
            nearline = generator.publish(dataset, paths[arm], users)
        record_user_snapshot(paths[arm], users)
    activate(paths[CONTROL])
    return ArmBundles(paths, generator.log, nearline)


def _export_arm(
    arm: str,
    dataset: Dataset,
    semantic: SemanticVectors,
    config: TrainConfig,
    generated: GeneratedBlocksLog | None,
    out: Path,
    seed: int,
) -> Path:
    """Train the arm's variant, evaluate it (with its blocks) and export it as a bundle."""
    variant = ARM_VARIANTS[arm]
    ranker = train_variant(dataset, semantic, config, VARIANTS[variant], generated)
    run = TrainingRun(
        ranker,
        semantic.encoder,
        {variant: evaluate(ranker, dataset, generated)},
        generator=None if generated is None else generated.generator_info(),
    )
    path = export_run(run, dataset, out / "bundles", version=f"sim-{arm}-s{seed}")
    log.info("%s arm: bundle %s trained in %.0f s", arm, path.name, ranker.train_seconds)
    return path


def experiment_config(name: str, arms: dict[str, Path], shadows: dict[str, Path]) -> dict[str, Any]:
    """The body of ``PUT /v1/admin/experiment``: the arms in equal shares."""
    share = 1.0 / len(arms)
    return {
        "name": name,
        "version": 1,
        "arms": [{"name": a, "bundle": p.name, "share": share} for a, p in arms.items()],
        "shadows": [{"name": s, "bundle": p.name} for s, p in shadows.items()],
    }


def experiment_configs(paths: dict[str, Path], seed: int) -> dict[str, dict[str, Any]]:
    """The A/B (control and treatment, the shadow re-ranking every request) and the A/A (the
    treatment's bundle in both arms) experiments."""
    return {
        "ab": experiment_config(
            f"sim-ab-s{seed}",
            {arm: paths[arm] for arm in (CONTROL, TREATMENT)},
            {SHADOW: paths[SHADOW]},
        ),
        "aa": experiment_config(f"sim-aa-s{seed}", dict.fromkeys(AA_ARMS, paths[TREATMENT]), {}),
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
                _count(counts, answer)
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


def _count(counts: dict[str, int], answer: dict[str, Any]) -> None:
    """Answers per arm, degraded answers, and each arm's answers per degradation
    (``<arm>/<reason>``)."""
    arm = answer["arm"]
    counts[arm] = counts.get(arm, 0) + 1
    counts["degraded"] = counts.get("degraded", 0) + bool(answer["degraded"])
    for reason in answer["degraded"]:
        counts[degraded_key(arm, reason)] = counts.get(degraded_key(arm, reason), 0) + 1


def degraded_key(arm: str, reason: str) -> str:
    """The traffic count of the arm's answers degraded for ``reason``."""
    return f"{arm}/{reason}"


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
    """Build the world, its generator and the arms' bundles, run the A/B and the A/A experiment
    through the service, report both and replay the A/B log; writes the reports and plots under
    ``out``."""
    started = time.perf_counter()
    config = SyntheticConfig.preset(spec.size, seed=spec.seed)
    dataset, truth = generate_with_truth(config)
    dataset.save(out / "data")  # what `reaseq experiment replay --data` reads
    bundles = build_arm_bundles(dataset, spec, out)
    shoppers = Shoppers(ClickModel.of(config, truth), dataset, spec)
    runs = experiment_configs(bundles.paths, spec.seed)
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
    replayed = replay(bundles.replay_arms(), dataset, answers["ab"], as_of=shoppers.as_of)
    seconds = time.perf_counter() - started
    run = SimulationRun(
        spec, reports["ab"], reports["aa"], replayed, traffic, bundles.nearline, seconds
    )
    (out / "simulation.json").write_text(json.dumps(run.as_dict(), indent=2) + "\n")
    return run
