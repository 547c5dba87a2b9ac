"""``reaseq gbr train`` writes a versioned checkpoint; ``reaseq gbr evaluate`` prints JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.gbr import block_settings
from cli.main import app
from offline.data.canonical import Dataset
from offline.data.synthetic import GroundTruth
from offline.gbr.checkpoint import GBRModel
from service.contracts.manifest import BlockSettings, read_manifest
from tests.cli.test_errors import assert_one_line, reaseq
from tests.support.bundles import build_bundle


def test_train_then_evaluate(tiny: tuple[Dataset, GroundTruth], tmp_path: Path) -> None:
    tiny[0].save(tmp_path / "data")
    runner = CliRunner()
    common = ["--data", str(tmp_path / "data"), "--checkpoint", str(tmp_path / "gbr")]
    trained = runner.invoke(
        app,
        ["gbr", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "gbr"),
         "--epochs", "1", "--threads", "1"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    config = json.loads((tmp_path / "gbr" / "gbr.json").read_text())
    assert config["version"].startswith("gbr-") and config["until_ts"] == tiny[0].split_ts
    evaluated = runner.invoke(
        app, ["gbr", "evaluate", *common, "--k", "8", "--cost-users", "0", "--threads", "1"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output[evaluated.output.index("{") :])
    assert report["gbr_version"] == config["version"]
    assert set(report["recall"]) >= {"gbr", "popularity", "cooccurrence", "semantic_nn"}
    assert "secondary_interest_share" in report  # synthetic data: the hidden world is redrawn


def test_generate_refuses_a_blend_the_checkpoint_cannot_make(
    item_model: GBRModel, tmp_path: Path
) -> None:
    """One line that says what to fix, before any bundle or data is read."""
    item_model.save(tmp_path / "gbr")
    replace(item_model, log_prior=None).save(tmp_path / "old")
    for weight, checkpoint, wanted in (
        ("0.5", "old", ("--log-weight", "retrain it")),
        ("1.5", "gbr", ("--log-weight", "less than or equal to 1")),
    ):
        answer = reaseq(
            "gbr", "generate", "--checkpoint", str(tmp_path / checkpoint),
            "--bundles", str(tmp_path / "none"), "--log-weight", weight, cwd=tmp_path,
        )  # fmt: skip
        assert_one_line(answer, *wanted)


def test_generation_defaults_to_the_blocks_the_ranker_was_trained_with(tmp_path: Path) -> None:
    manifest = read_manifest(build_bundle(tmp_path))
    assert manifest.generator is not None
    recorded = manifest.model_copy(
        update={"generator": manifest.generator.model_copy(
            update={"blocks": BlockSettings(beyond_slots=2, log_weight=0.75)})}
    )  # fmt: skip
    assert block_settings(recorded, None, None) == (2, 0.75)
    assert block_settings(recorded, 0, None) == (0, 0.75)  # an option given wins
    assert block_settings(recorded, None, 0.25) == (2, 0.25)
    # A bundle recorded before the settings, or without a generator: the generator alone.
    assert block_settings(manifest, None, None) == (0, 0.0)
    bare = manifest.model_copy(update={"generator": None})
    assert block_settings(bare, 4, None) == (4, 0.0)


def test_evaluate_blends_with_the_training_logs_when_asked(
    item_model: GBRModel, tiny: tuple[Dataset, GroundTruth], tmp_path: Path
) -> None:
    tiny[0].save(tmp_path / "data")
    item_model.save(tmp_path / "gbr")
    replace(item_model, log_prior=None).save(tmp_path / "old")
    runner = CliRunner()
    common = ["gbr", "evaluate", "--data", str(tmp_path / "data"), "--k", "8",
              "--cost-users", "0", "--threads", "1"]  # fmt: skip
    reports = {}
    for weight in ("0", "1"):
        answer = runner.invoke(
            app, [*common, "--checkpoint", str(tmp_path / "gbr"), "--log-weight", weight]
        )
        assert answer.exit_code == 0, answer.output
        reports[weight] = json.loads(answer.output[answer.output.index("{") :])
    assert reports["0"]["log_weight"] == 0 and reports["1"]["log_weight"] == 1
    # Weight 1 is the training logs' co-occurrence alone: the co-occurrence baseline of the
    # same events, so the same recall up to the order of tied items; weight 0 is the
    # generator's own block.
    assert reports["1"]["recall"]["gbr"] == pytest.approx(
        reports["1"]["recall"]["cooccurrence"], abs=0.01
    )
    assert reports["0"]["recall"]["cooccurrence"] == reports["1"]["recall"]["cooccurrence"]
    refused = reaseq(
        *common, "--checkpoint", str(tmp_path / "old"), "--log-weight", "0.5", cwd=tmp_path
    )
    assert_one_line(refused, "--log-weight", "retrain it")
