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
from model_export.online_experiment import CONTROL, SHADOW, TREATMENT, SimulationRun
from model_export.report import machine_description
from model_export.results_sections import EXPERIMENT_END, EXPERIMENT_START, splice_section
from offline.experiments import findings, table_lines

COMMAND = "reaseq experiment simulate"
PLOT_NAME = "experiment.png"


def replay_finding(replay: ReplayReport) -> str:
    """Which arm the evaluation set ranks better, by AUC and GAUC."""
    control, treatment = replay.evaluation[CONTROL], replay.evaluation[TREATMENT]
    better = TREATMENT if treatment.gauc > control.gauc else CONTROL
    return (
        f"- Offline, on the evaluation set, {better} ranks better: GAUC {treatment.gauc:.4f} "
        f"({TREATMENT}) against {control.gauc:.4f} ({CONTROL}), AUC {treatment.auc:.4f} against "
        f"{control.auc:.4f}."
    )


def render_section(run: SimulationRun, command: str, machine: str, generated_at: str) -> str:
    spec, ab = run.spec, run.ab
    users = sum(arm.users for arm in ab.arms)
    lines = [
        EXPERIMENT_START,
        "## Online experiment on the synthetic world (simulated)",
        "",
        f"_Regenerate with `{command}`; measured on {machine}, {generated_at}, "
        f"{run.seconds:.0f} s in all._",
        "",
        f"Synthetic preset `{spec.size}`, seed {spec.seed}. Two bundles trained on its logs "
        f"({spec.epochs} epochs): **{CONTROL}** (item IDs only, the control) and **{TREATMENT}** "
        "(IDs fused with knowledge vectors; no generated behaviours). The service ran them as "
        "two arms with 50/50 sticky assignment by user, with a shadow arm "
        f"**{SHADOW}** re-ranking every request with the {TREATMENT} bundle. {users} users "
        f"sent {spec.requests_per_user} requests each of {spec.candidates} candidates drawn by "
        f"the world's exposure (top {spec.top_k} returned, scored as of the end of the logs). "
        "Each shopper looks at position p (1 = top) with probability 1 / log2(p + 1) and clicks "
        "what it looks at with the world's own click probability; a click becomes an order "
        "with the world's carts-per-click times purchases-per-cart. Clicks and orders went to "
        "`POST /v1/outcomes`; the figures come from the service's prediction log, joined by "
        f"request ID. Intervals: 95%, bootstrap over users ({spec.replicates} replicates); "
        "p: two-sided bootstrap p-value of no difference.",
        "",
        f"![CTR per arm and by position]({PLOT_NAME})",
        "",
        f"### A/B: {TREATMENT} against {CONTROL}",
        "",
        *table_lines(ab),
        "",
        *findings(ab),
        "",
        f"### A/A: the {TREATMENT} bundle in both arms",
        "",
        *table_lines(run.aa),
        "",
        *findings(run.aa),
        "",
        "### Replay of the A/B log",
        "",
        "Both bundles scored offline (onnxruntime, the exported graph): (a) the evaluation "
        "set of the world's logs, (b) the A/B answers that have outcomes, each arm re-ranking "
        "the items shown.",
        "",
        *replay_lines(run.replay),
        "",
        replay_finding(run.replay),
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
