"""``reaseq results`` on the tiny preset: every section is there, with its command and machine,
and the JSON holds the figures the tables show."""

from __future__ import annotations

import json

import pytest

from model_export.ablation import history_findings
from model_export.generated_log import GeneratorSetup
from model_export.report import COMMAND, ResultsSpec, machine_description, write_results
from model_export.train import TrainConfig
from model_export.world_ablation import WorldSetup
from offline.data.synthetic import SyntheticConfig
from offline.gbr import GBRTrainConfig, GenerationConfig

TINY_GENERATOR = GeneratorSetup(
    train=GBRTrainConfig(
        epochs=1, dim=16, heads=2, layers=1, ff_dim=32, history_items=8, max_slots=8
    ),
    generation=GenerationConfig(k=8, steps=2),
)
SECTIONS = (
    "## Ablation of the ranker",
    "## Fusion and user encoder",
    "## Reasoning-enhanced item vectors vs ID only",
    "## Beyond-log hit rate of generated behaviours",
    "## Semantic consistency",
    "## The hidden secondary interest",
    "## Generation cost",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:  # type: ignore[type-arg]
    docs = tmp_path_factory.mktemp("docs")
    spec = ResultsSpec(
        size="tiny",
        seeds=(0, 1),
        ranker=TrainConfig(
            epochs=1,
            max_seq_len=20,
            item_dim=16,
            hidden_dim=32,
            threads=1,
            progress=False,
            generated_slots=TINY_GENERATOR.k,
        ),
        generator=TINY_GENERATOR,
        cost_grid=((4, 1), (8, 1), (8, 2)),
        cost_users=20,
        complement_slots=2,
        world=WorldSetup(
            exploration_share=0.2,
            exploration_aim=0.5,
            external_shoppers=40,
            clicks_per_shopper=8,
            walks=40,
            walk_length=6,
        ),
    )
    document = write_results(spec, docs)
    assert json.loads((docs / "results.json").read_text())["ablation"] == document["ablation"]
    return document, (docs / "RESULTS.md").read_text()


def test_every_section_names_its_command_and_machine(report: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    _, markdown = report
    command = f"{COMMAND} --size tiny --seeds 2 --exploration-aim 0.5"  # the spec's own line
    provenance = f"_Regenerate with `{command}`; measured on {machine_description()}._"
    for heading in SECTIONS:
        assert heading in markdown
        section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
        assert provenance in section, heading


def test_ablation_covers_every_ranker_and_slice(report: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    document, markdown = report
    rankers = ("id_only", "model", "id_gbr", "full_plain", "full", "oracle", "corpus_oracle")
    for name in (*rankers, "pattern_oracle", "corpus", "complements"):
        for suffix in ("", "/sparse_users", "/cold_items", "/exploration"):
            stats = document["ablation"][name + suffix]
            assert 0.0 <= stats["auc"]["mean"] <= 1.0 and stats["gauc"]["std"] >= 0.0
    gains = ("gain_full", "gain_full_plain", "gain_oracle", "gain_corpus_oracle", "gain_corpus")
    for gain in (*gains, "gain_complements", "gain_pattern_oracle"):
        assert gain + "/exploration" in document["ablation"]
    assert document["ablation"]["examples/exploration"]["n"]["mean"] > 0
    assert "| full: knowledge + world GBR |" in markdown
    assert "- exploration: world GBR adds" in markdown
    shares = document["generator"]["block_secondary_share"]
    sources = {"plain", "world", "oracle", "pattern_oracle", "corpus_oracle", "corpus"}
    assert set(shares) == sources | {"complements"}
    assert shares["oracle"]["mean"] == 1.0 and 0.0 <= shares["complements"]["mean"] <= 1.0
    per_seed = [run["block_secondary_share"]["world"] for run in document["generator_runs"]]
    assert shares["world"]["mean"] == pytest.approx(sum(per_seed) / len(per_seed))
    assert "| knowledge + complement blocks (records only, no generator) |" in markdown
    assert "- Share of the evaluation requests' block items in the user's secondary kind: " in (
        markdown
    )
    assert "- Complement blocks add, in AUC to knowledge only: overall " in markdown
    assert "| corpus oracle − knowledge (the corpus's ceiling) |" in markdown
    named = shares["corpus_oracle"]["mean"]
    assert f"secondary kind for {named:.0%} of the evaluation requests' users" in markdown
    assert "- The corpus oracle (blocks of that kind) adds, in AUC to knowledge only: overall " in (
        markdown
    )
    assert "| pattern oracle − knowledge (knowing the world's patterns) |" in markdown
    follows = shares["pattern_oracle"]["mean"]
    assert 0.0 < follows < 1.0
    assert f"kind for {follows:.0%} of the evaluation requests' users; the others'" in markdown
    assert "- The pattern oracle (blocks of that kind: every pattern of the world" in markdown
    assert "| knowledge + corpus blocks (corpus counts only, no generator) |" in markdown
    assert "no generator, no truth) add, in AUC to knowledge only: overall " in markdown


def test_sparse_users_requests_are_set_beside_the_others(report: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    document, markdown = report
    parts = document["generator"]["by_history"]
    assert set(parts) == {"sparse_users", "other_users"}
    for part in parts.values():
        assert part["block_secondary_share"]["oracle"]["mean"] == 1.0
        assert 0.0 <= part["primary_main_kind"]["mean"] <= 1.0
    per_seed = [
        run["by_history"]["sparse_users"]["block_secondary_share"]["world"]
        for run in document["generator_runs"]
    ]
    world = parts["sparse_users"]["block_secondary_share"]["world"]["mean"]
    assert world == pytest.approx(sum(per_seed) / len(per_seed))
    main = parts["sparse_users"]["primary_main_kind"]["mean"]
    assert (
        f"against the others: the history's main kind is the user's primary kind for {main:.0%}"
        in markdown
    )
    assert f"world GBR {world:.4f} against " in markdown


def _by_history(sparse: dict[str, float], others: dict[str, float], main: tuple[float, float]):  # type: ignore[no-untyped-def]
    def part(shares: dict[str, float], primary: float) -> dict:  # type: ignore[type-arg]
        return {
            "primary_main_kind": {"mean": primary, "std": 0.0},
            "block_secondary_share": {k: {"mean": v, "std": 0.0} for k, v in shares.items()},
        }

    return {"sparse_users": part(sparse, main[0]), "other_users": part(others, main[1])}


def test_history_findings_say_a_short_history_hides_the_kind_only_when_the_figures_do() -> None:
    sources = ("world", "corpus", "pattern_oracle", "corpus_oracle")
    others = dict(zip(sources, (0.2, 0.4, 0.7, 0.4), strict=True))
    lose = dict(zip(sources, (0.1, 0.2, 0.7, 0.42), strict=True))
    lines = history_findings(_by_history(lose, others, (0.5, 0.9)))
    assert lines[0].startswith("- Requests of sparse users (at most 5 behaviours before them)")
    assert "primary kind for 50% against 90%" in lines[0]
    assert "world GBR 0.1000 against 0.2000, corpus blocks 0.2000 against 0.4000" in lines[0]
    assert "keep 50%–50% of their share" in lines[1]
    assert "given the true primary kind 100%–105%" in lines[1]
    keep = dict(zip(sources, (0.2, 0.4, 0.7, 0.4), strict=True))
    assert len(history_findings(_by_history(keep, others, (0.5, 0.9)))) == 1
    assert len(history_findings(_by_history(lose, others, (0.9, 0.5)))) == 1
    assert history_findings({}) == []


def test_fusion_and_encoder_rows_are_gained_against_the_summed_light_ranker(
    report: tuple[dict, str],  # type: ignore[type-arg]
) -> None:
    document, markdown = report
    runs = document["runs"]
    for name in ("gate", "gate_self_attention"):
        for suffix in ("", "/sparse_users", "/cold_items"):
            key = name + suffix
            gains = [run[key]["auc"] - run["model" + suffix]["auc"] for run in runs]
            mean = document["encoders"]["gain_" + key]["auc"]["mean"]
            assert mean == pytest.approx(sum(gains) / len(gains))
    assert "| gated fusion, self-attention encoder |" in markdown
    assert "- overall, gated − summed fusion: AUC " in markdown


def test_generator_sections_hold_baselines_consistency_and_cost(report: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    document, markdown = report
    generator = document["generator"]
    methods = {
        "gbr", "gbr_world", "gbr_beyond", "gbr_complements", "popularity", "cooccurrence",
        "semantic_nn",
        "random",
    }  # fmt: skip
    assert set(generator["recall"]) == methods
    assert set(generator["semantic_consistency"]) == methods
    assert 0.0 <= generator["recall"]["gbr"]["mean"] <= 1.0
    visibility = generator["secondary_visibility"]
    visible = {"history_share", "catalogue_share", "users_with_any", "primary_main_kind"}
    assert visible | {"complement_top1"} <= set(visibility)
    assert "users whose history's most frequent kind is their primary kind" in markdown
    assert [(row["k"], row["steps"]) for row in generator["cost"]] == [(4, 1), (8, 1), (8, 2)]
    assert all(row["users_per_s"] > 0 for row in generator["cost"])
    assert "| K=8 |" in markdown and "S=2" in markdown
    assert len(document["generator_runs"]) == 2
    corpus = document["generator_runs"][0]["world_corpus"]
    assert corpus["sources"] == {"external shoppers": 40, "knowledge walks": 40}
    assert "Share of generated items in the user's hidden secondary kind" in markdown


def test_the_command_names_each_world_setting_off_its_default() -> None:
    import inspect

    from cli.main import results

    assert ResultsSpec().command == COMMAND
    world = WorldSetup(
        exploration_aim=0.5,
        secondary_weight=0.9,
        co_interest=False,
        kind_focus=0.0,
        complement_share=1.0,
    )
    assert ResultsSpec(world=world).command == (
        f"{COMMAND} --exploration-aim 0.5 --secondary-weight 0.9 --no-co-interest --kind-focus 0"
        " --complement-share 1"
    )
    assert "for 100% of the users whose primary kind has a complement" in world.world_text()
    config = ResultsSpec(size="tiny", world=world).world_config(seed=4)
    assert (config.seed, config.n_items) == (4, SyntheticConfig.preset("tiny").n_items)
    assert (config.exploration_aim, config.secondary_weight) == (0.5, 0.9)
    assert (config.co_interest, config.kind_focus) == (False, 0.0)
    assert config.secondary_complement_prob == 1.0
    without = ResultsSpec(ranker=TrainConfig(progress=False))
    assert without.command == f"{COMMAND} --no-slot-vectors"
    defaults = inspect.signature(results).parameters
    assert defaults["slot_vectors"].default == (ResultsSpec().ranker.generated_slots > 0)
    assert defaults["secondary_weight"].default == WorldSetup.secondary_weight
    assert defaults["exploration_aim"].default == WorldSetup.exploration_aim
    assert defaults["co_interest"].default == WorldSetup.co_interest
    assert defaults["kind_focus"].default == WorldSetup.kind_focus
    assert defaults["complement_share"].default == WorldSetup.complement_share
