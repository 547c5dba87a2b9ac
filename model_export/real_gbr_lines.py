"""The lines of the real-data section that read what the world generator's blocks add: the
GBR ranker's gain over the gated ranker it grew on, how many seeds kept a trained branch, the
generator's beyond-log recall (from the history at the split, and rolled through the test
period) and the blend validation chose."""

from __future__ import annotations

import statistics
from typing import Any

from model_export.real_data import GATE_GBR, GROWN_ON


def gbr_lines(
    summary: dict[str, Any], runs: list[dict[str, Any]], parts: tuple[tuple[str, str], ...]
) -> list[str]:
    """What the generated behaviours add on real data, read off the figures; ``parts``: the
    (key, label) of each slice the gains are read on."""
    lines = []
    gain = summary.get("gbr_gain")
    if gain:
        gains = ", ".join(
            f"{label} {gain[f'{part}/gauc']['mean']:+.4f} ± {gain[f'{part}/gauc']['std']:.4f}"
            for part, label in parts
        )
        lines.append(f"- World GBR blocks − gated knowledge ranker, GAUC: {gains}.")
    lines.extend(_slot_lines(summary.get("slot_gain"), parts))
    epochs = [run["best_epoch"].get(GATE_GBR) for run in runs]
    if epochs and all(epoch is not None for epoch in epochs):
        kept = sum(1 for epoch in epochs if epoch > 0)
        lines.append(
            f"- The GBR ranker grows on the `{GROWN_ON[GATE_GBR]}` ranker of its seed (that "
            "ranker frozen, only the generated-behaviour branch trained, the start itself "
            f"a candidate of early stopping): validation kept a trained branch in {kept} of "
            f"{len(epochs)} seeds (best epochs {', '.join(str(e) for e in epochs)}; 0 is the "
            "start, which scores as the ranker it grew on)."
        )
    generator = summary.get("generator")
    if generator:
        recall = generator["recall"]
        names = {"gbr_world": "world generator (blocks as the ranker gets them)",
                 "gbr": "world generator alone (greedy, no slots, no blend)",
                 "cooccurrence": "co-occurrence", "popularity": "popularity",
                 "semantic_nn": "semantic neighbours"}  # fmt: skip
        tested = all(run["generator"].get("targets") == "test period" for run in runs)
        period = "of the test period" if tested else "after the split"
        lines.append(
            f"- Beyond-log recall@16 (new clicks {period}): "
            + ", ".join(
                f"{label} {recall[name]['mean']:.4f} ± {recall[name]['std']:.4f}"
                for name, label in names.items()
                if name in recall
            )
            + "."
        )
        gaps = [run["generator"].get("versus_cooccurrence", {}).get("gbr_world") for run in runs]
        lines.extend(_gap_lines(gaps, runs, "test-period users with new clicks"))
        lines.extend(_rolling_lines(generator.get("rolling"), runs, names))
        lines.extend(_choice_lines(runs))
    return lines


def _slot_lines(gain: dict[str, Any] | None, parts: tuple[tuple[str, str], ...]) -> list[str]:
    """What a learned vector per slot of the block adds to the same GBR ranker, on test and on
    validation (where a choice between them would be made)."""
    if not gain:
        return []
    tested = ", ".join(
        f"{label} {gain[f'{part}/gauc']['mean']:+.4f} ± {gain[f'{part}/gauc']['std']:.4f}"
        for part, label in parts
    )
    validation = gain["validation/gauc"]
    if abs(validation["mean"]) <= 2 * validation["std"]:
        favours = "cannot tell the two apart (within 2 std)"
    elif validation["mean"] > 0:
        favours = "favours them"
    else:
        favours = "favours the ranker without them"
    return [
        f"- Slot vectors (a learned vector per slot of the block) − the same GBR ranker without "
        f"them, GAUC: {tested}; on validation {validation['mean']:+.4f} ± "
        f"{validation['std']:.4f}: validation {favours}."
    ]


def _choice_lines(runs: list[dict[str, Any]]) -> list[str]:
    """The co-occurrence weight and beyond-log slot count each seed's validation chose, with
    the rolled validation recall of every pair (mean over seeds)."""
    generators = [run["generator"] for run in runs]
    if any("log_weight" not in g for g in generators):
        return []
    chosen = ", ".join(f"{g['log_weight']:g} / {g['beyond_slots']}" for g in generators)

    def mean(pair: str) -> float:
        return statistics.fmean(g["validation_recall"][pair] for g in generators)

    pairs = list(generators[0]["validation_recall"])
    figures = ", ".join(f"{pair.replace('/', ' / ')} {mean(pair):.4f}" for pair in pairs)
    best = max(pairs, key=mean)
    gain = ""
    if "0/0" in pairs and best != "0/0":
        gain = (
            f"; the best pair on average ({best.replace('/', ' / ')}) recalls "
            f"{mean(best) - mean('0/0'):+.4f} more than the generator alone (0 / 0)"
        )
    return [
        "- The ranker's blocks, chosen per seed by recall@16 rolled through the validation "
        "period: weight of the training logs' co-occurrence / beyond-log slots "
        f"{chosen} (validation recall, mean over seeds: {figures}){gain}."
    ]


def _rolling_lines(
    rolling: dict[str, Any] | None, runs: list[dict[str, Any]], names: dict[str, str]
) -> list[str]:
    """Beyond-log recall rolled through the test period, and the paired gap there."""
    if not rolling:
        return []
    rolled = [run["generator"]["rolling"] for run in runs]
    points = " / ".join(sorted({str(r["points"]) for r in rolled}))
    users = " / ".join(sorted({str(r["users"]) for r in rolled}))
    recall = rolling["recall"]
    figures = ", ".join(
        f"{label} {recall[name]['mean']:.4f} ± {recall[name]['std']:.4f}"
        for name, label in names.items()
        if name in recall
    )
    gaps = [r["versus_cooccurrence"]["gbr_world"] for r in rolled]
    line = [
        "- Rolled through the test period (a point at every new click of a user with history "
        "before it; the history grows through the period, the targets are the next "
        f"{rolled[0]['horizon']} new clicks, the generator and the baselines' statistics stay "
        f"those before the split): {points} points of {users} users; recall@"
        f"{rolled[0]['k']} averaged over each user's points, then over users: {figures}."
    ]
    return [*line, *_gap_lines(gaps, runs, "users of the rolled points", "rolled recall")]


def _gap_lines(
    gaps: list[dict[str, Any] | None],
    runs: list[dict[str, Any]],
    who: str,
    what: str = "recall",
) -> list[str]:
    """The world generator's blocks against co-occurrence, user by user, per seed: the mean
    paired difference of ``what`` with its 95% bootstrap interval over the users (``who``),
    and what the intervals say."""
    present = [gap for gap in gaps if gap]
    if len(present) < len(gaps):
        return []
    users = {gap["users"] for gap in present}
    spans = ", ".join(
        f"seed {run['seed']} {gap['mean']:+.4f} [{gap['low']:+.4f}, {gap['high']:+.4f}]"
        for run, gap in zip(runs, present, strict=True)
    )
    above = sum(1 for gap in present if gap["low"] > 0)
    below = sum(1 for gap in present if gap["high"] < 0)
    if above == len(gaps):
        reading = "above co-occurrence in every seed, beyond the users' noise"
    elif below == len(gaps):
        reading = "below co-occurrence in every seed, beyond the users' noise"
    elif above + below == 0:
        reach = max(max(-gap["low"], gap["high"]) for gap in present)
        reading = (
            "within the users' noise of co-occurrence in every seed: each interval holds 0, "
            f"and none reaches beyond ±{reach:.4f}"
        )
    else:
        reading = (
            f"apart from co-occurrence beyond the users' noise in {above + below} of "
            f"{len(gaps)} seeds ({above} above, {below} below); the rest of the intervals hold 0"
        )
    return [
        f"- World generator (blocks as the ranker gets them) − co-occurrence, {what}@16 paired "
        f"over the {' / '.join(str(u) for u in sorted(users))} {who} (mean, 95% bootstrap "
        f"interval over users): {spans}. The generator is {reading}."
    ]
