"""The simulated online experiment's section of ``docs/RESULTS.md`` (between its markers, which
``reaseq results`` keeps), with its plot beside the document.

Every sentence that reads the figures is computed from them (:func:`offline.experiments.findings`
and :func:`replay_finding`).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from model_export.experiment_replay import ReplayReport, replay_lines
from model_export.online_experiment import (
    ARM_VARIANTS,
    CONTROL,
    SHADOW,
    TREATMENT,
    SimulationRun,
    SimulationSpec,
    degraded_key,
)
from model_export.pipeline import VARIANTS
from model_export.report import machine_description
from model_export.results_sections import EXPERIMENT_END, EXPERIMENT_START, splice_section
from offline.experiments import findings, table_lines
from service.ranking.result import Degradation

NO_GENERATED = Degradation.NO_GENERATED_BEHAVIOURS.value

COMMAND = "reaseq experiment simulate"
PLOT_NAME = "experiment.png"


def replay_finding(replay: ReplayReport) -> list[str]:
    """The treatment against the control, and against the shadow's ranker where it was
    replayed, on the evaluation set: AUC and GAUC differences (one set, no interval)."""
    treatment = replay.evaluation[TREATMENT]
    sentences = []
    for other in (CONTROL, SHADOW):
        if other not in replay.evaluation:
            continue
        found = replay.evaluation[other]
        sentences.append(
            f"- Offline, on the evaluation set, {TREATMENT} − {other}: GAUC "
            f"{treatment.gauc - found.gauc:+.4f} ({treatment.gauc:.4f} against {found.gauc:.4f}), "
            f"AUC {treatment.auc - found.auc:+.4f} ({treatment.auc:.4f} against {found.auc:.4f}); "
            "one evaluation set, no interval."
        )
    return sentences


def arm_description(arm: str, spec: SimulationSpec) -> str:
    """What the arm's ranker uses, from its ablation variant."""
    variant = VARIANTS[ARM_VARIANTS[arm]]
    if variant.use_semantic is False:
        return "item IDs only"
    blocks = (
        f"attending over {spec.generated} generated behaviours per user"
        if variant.uses_generated
        else "no generated behaviours"
    )
    return f"IDs fused with knowledge vectors, {blocks}"


def setup_lines(run: SimulationRun) -> list[str]:
    """The paragraph on the world, the generator, the bundles and their user snapshots."""
    spec, nearline = run.spec, run.nearline
    users = sum(arm.users for arm in run.ab.arms)
    treatment_answers = run.traffic["ab"].get(TREATMENT, 0)
    missing = run.traffic["ab"].get(degraded_key(TREATMENT, NO_GENERATED), 0)
    return [
        f"Synthetic preset `{spec.size}`, seed {spec.seed}. A behaviour generator trained on the "
        f"events before the split ({spec.gbr_epochs} epochs) and three bundles trained on the "
        f"logs ({spec.epochs} epochs): **{CONTROL}** ({arm_description(CONTROL, spec)}; the "
        f"control), **{TREATMENT}** ({arm_description(TREATMENT, spec)}; the treatment) and "
        f"**{SHADOW}** ({arm_description(SHADOW, spec)}; a shadow arm). Each bundle reads its "
        "own embedded user snapshot, recorded beside it: the "
        f"{TREATMENT} bundle's holds the users' sequences and the generated blocks the nearline "
        f"job wrote for {nearline.get('users_generated', 0)} of the {users} users, those with "
        f"a behaviour to generate from (generator {nearline.get('gbr_version', 'none')}, in "
        "that bundle's fused item vectors), the others' the sequences only; "
        f"{missing} of the {treatment_answers} {TREATMENT} answers came without generated "
        f"behaviours (`{NO_GENERATED}`). The service ran {CONTROL} and "
        f"{TREATMENT} as two arms with 50/50 sticky assignment by user; {SHADOW} re-ranked every "
        f"request, so its agreement with {TREATMENT} compares the order of the same fusion "
        f"trained with and without generated behaviours. {users} users sent "
        f"{spec.requests_per_user} requests each of "
        f"{spec.candidates} candidates drawn by the world's exposure (top {spec.top_k} "
        "returned, scored as of the end of the logs). Each shopper looks at position p (1 = "
        "top) with probability 1 / log2(p + 1) and clicks what it looks at with the world's own "
        "click probability; a click becomes an order with the world's carts-per-click times "
        "purchases-per-cart. Clicks and orders went to `POST /v1/outcomes`; the figures come "
        "from the service's prediction log, joined by request ID. Intervals: 95%, bootstrap "
        f"over users ({spec.replicates} replicates); p: two-sided bootstrap p-value of no "
        "difference.",
    ]


def render_section(run: SimulationRun, command: str, machine: str, generated_at: str) -> str:
    lines = [
        EXPERIMENT_START,
        "## Online experiment on the synthetic world (simulated)",
        "",
        f"_Regenerate with `{command}`; measured on {machine}, {generated_at}, "
        f"{run.seconds:.0f} s in all._",
        "",
        *setup_lines(run),
        "",
        f"![CTR per arm and by position]({PLOT_NAME})",
        "",
        f"### A/B: {TREATMENT} against {CONTROL}",
        "",
        *table_lines(run.ab),
        "",
        *findings(run.ab),
        "",
        f"### A/A: the {TREATMENT} bundle in both arms",
        "",
        *table_lines(run.aa),
        "",
        *findings(run.aa),
        "",
        "### Replay of the A/B log",
        "",
        "Every bundle scored offline (onnxruntime, the exported graph): (a) the evaluation "
        "set of the world's logs, (b) the A/B answers that have outcomes, each arm re-ranking "
        "the items shown.",
        "",
        *replay_lines(run.replay),
        "",
        *replay_finding(run.replay),
        EXPERIMENT_END,
    ]
    return "\n".join(lines) + "\n"


def write_section(run: SimulationRun, results: Path, plot: Path, command: str = COMMAND) -> Path:
    """Splice the section into ``results`` (created if missing) and put ``plot`` beside it."""
    generated_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = render_section(run, command, machine_description(), generated_at)
    document = results.read_text() if results.exists() else "# Offline results\n"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(splice_section(document, section, EXPERIMENT_START, EXPERIMENT_END))
    shutil.copyfile(plot, results.parent / PLOT_NAME)
    return results
