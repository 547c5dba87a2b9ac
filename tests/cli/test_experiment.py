"""``reaseq experiment``: the report of a prediction log (tables, JSON, plot, Markdown), and a
wrong log, Redis URL, bundle or output folder as one line that says what to fix; the command
line that regenerates the simulated experiment's section."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path

import redis

from cli.experiment import _simulate_command, simulate
from model_export.online_experiment import SimulationSpec
from service.experiments import records
from tests.cli.test_errors import assert_one_line, reaseq
from tests.offline.experiments.logs import outcome, prediction, write_log
from tests.support.ports import free_port


def _log(folder: Path) -> Path:
    lines: list[Mapping[str, object]] = []
    for n in range(40):
        arm = "control" if n % 2 else "treatment"
        items = [f"i{k}" for k in range(5)]
        lines.append(prediction(f"r{n}", f"u{n % 10}", items, arm))
        if n % 3 == 0:
            lines.append(outcome(f"r{n}", f"i{n % 5}"))
    write_log(folder, lines, files=2)
    return folder


def test_report_prints_the_tables_and_writes_json_plot_and_markdown(tmp_path: Path) -> None:
    log = _log(tmp_path / "log")
    out, markdown = tmp_path / "out", tmp_path / "report.md"
    answer = reaseq(
        "experiment", "report", "--log", str(log), "--out", str(out), "--markdown",
        str(markdown), "--replicates", "200", cwd=tmp_path,
    )  # fmt: skip
    assert answer.code == 0, answer.text
    assert "experiment exp, control control" in answer.lines[0]
    assert any(line.startswith("| treatment − control | CTR |") for line in answer.lines)
    report = json.loads((out / "report.json").read_text())
    assert [arm["arm"] for arm in report["arms"]] == ["control", "treatment"]
    assert sum(arm["requests"] for arm in report["arms"]) == 40
    assert (out / "ctr.png").stat().st_size > 0
    assert "- CTR: " in markdown.read_text()


def test_a_missing_log_folder(tmp_path: Path) -> None:
    answer = reaseq("experiment", "report", "--log", str(tmp_path / "nope"), cwd=tmp_path)
    assert_one_line(answer, str(tmp_path / "nope"))


def test_a_folder_without_log_files(tmp_path: Path) -> None:
    answer = reaseq("experiment", "report", "--log", str(tmp_path), cwd=tmp_path)
    assert_one_line(answer, "predictions-*.jsonl", "REASEQ_PREDICTION_LOG_DIR")


def test_neither_or_both_sources(tmp_path: Path) -> None:
    assert_one_line(reaseq("experiment", "report", cwd=tmp_path), "--log DIR or --redis-url")
    both = reaseq(
        "experiment", "report", "--log", str(tmp_path), "--redis-url", "redis://127.0.0.1:1/0",
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line(both, "exactly one")


def test_an_unreachable_or_malformed_redis(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert_one_line(
        reaseq("experiment", "report", "--redis-url", url, cwd=tmp_path), "cannot reach Redis"
    )
    assert_one_line(
        reaseq("experiment", "report", "--redis-url", "127.0.0.1:6379", cwd=tmp_path),
        "--redis-url",
    )


def test_a_replay_of_bundles_that_are_not_there(tmp_path: Path) -> None:
    log = _log(tmp_path / "log")
    (tmp_path / "data").mkdir()
    answer = reaseq(
        "experiment", "replay", "--log", str(log), "--data", str(tmp_path / "data"),
        "--bundles", str(tmp_path / "bundles"), cwd=tmp_path,
    )  # fmt: skip
    assert_one_line(answer, "no bundle bundle-", "--bundles")
    wrong = reaseq(
        "experiment", "replay", "--log", str(log), "--data", str(tmp_path / "data"),
        "--arm", "control", cwd=tmp_path,
    )  # fmt: skip
    assert_one_line(wrong, "NAME=BUNDLE_VERSION")


def test_simulate_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "kept.txt").write_text("mine")
    answer = reaseq("experiment", "simulate", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert_one_line(answer, "is not empty")


def test_report_reads_the_redis_stream(tmp_path: Path, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    for line in [
        prediction("r1", "u1", ["i1", "i2"], "control"),
        prediction("r2", "u2", ["i1", "i2"], "treatment"),
        outcome("r2", "i2"),
    ]:
        client.xadd(records.PREDICTION_STREAM, {records.STREAM_FIELD: json.dumps(line)})
    client.close()
    answer = reaseq(
        "experiment", "report", "--redis-url", redis_url, "--control", "control",
        "--replicates", "100", cwd=tmp_path,
    )  # fmt: skip
    assert answer.code == 0, answer.text
    assert any(line.startswith("| treatment | 1 | 1 | 2 | 1 | 0 | 0.5000") for line in answer.lines)


def test_simulate_defaults_are_the_specs_and_the_command_names_the_others() -> None:
    defaults = SimulationSpec()
    options = inspect.signature(simulate).parameters
    for name in ("seed", "epochs", "generated", "gbr_epochs", "requests_per_user", "candidates"):
        assert options[name].default == getattr(defaults, name), name
    spec = SimulationSpec(generated=8, gbr_epochs=1)
    assert _simulate_command(spec, Path("docs/RESULTS.md")) == (
        "reaseq experiment simulate --results docs/RESULTS.md --generated 8 --gbr-epochs 1"
    )
