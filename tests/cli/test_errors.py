"""A mistake (a wrong option, path, URL or setting) is one line that says what to fix, exit 2, no
traceback; ``--debug`` or ``REASEQ_DEBUG=1`` shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.bundles import build_bundle
from tests.support.loaders import write_recbole
from tests.support.ports import free_port

REASEQ = [sys.executable, "-m", "cli.main"]
REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Answer:
    code: int
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def reaseq(*args: str, cwd: Path, **env: str) -> Answer:
    """``reaseq`` in ``cwd`` with ``env`` added, and no REASEQ_* of the caller's own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REASEQ_")}
    done = subprocess.run(
        [*REASEQ, *args],
        capture_output=True,
        text=True,
        timeout=300,  # a loaded machine: the first run of a module pays for cold imports
        cwd=cwd,
        env={**base, "PYTHONPATH": str(REPOSITORY), **env},
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    return Answer(done.returncode, lines)


def assert_one_line(answer: Answer, *wanted: str) -> None:
    assert answer.code == 2, answer.text
    assert len(answer.lines) == 1, answer.text
    assert answer.lines[0].startswith("error: "), answer.text
    assert "Traceback" not in answer.text
    for text in wanted:
        assert text in answer.lines[0], answer.text


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    """A working folder without bundles or data."""
    return tmp_path


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A bundle root and a tiny dataset to publish from."""
    root = tmp_path_factory.mktemp("publish")
    build_bundle(root / "bundles")
    answer = reaseq("data", "--size", "tiny", "--out", str(root / "data"), cwd=root)
    assert answer.code == 0, answer.text
    yield root / "bundles", root / "data"


def test_a_missing_dataset_folder(empty: Path) -> None:
    answer = reaseq("build", "--format", "recbole", "--source", "/nope", cwd=empty)
    assert_one_line(answer, "/nope is not a directory")


def test_an_unreachable_redis_on_publish(empty: Path, published: tuple[Path, Path]) -> None:
    bundles, data = published
    url = f"redis://127.0.0.1:{free_port()}/0"
    answer = reaseq(
        "publish", "--store", "redis", "--redis-url", url,
        "--bundles", str(bundles), "--data", str(data), cwd=empty,
    )  # fmt: skip
    assert_one_line(answer, "cannot reach Redis", "Error 111", "--redis-url / REASEQ_REDIS_URL")


def test_a_redis_url_without_a_scheme_on_publish(empty: Path) -> None:
    answer = reaseq("publish", "--store", "redis", "--redis-url", "localhost:6379", cwd=empty)
    assert_one_line(answer, "--redis-url", "not a Redis URL", "redis://")


def test_publish_without_a_bundle(empty: Path) -> None:
    answer = reaseq("publish", "--bundles", str(empty / "bundles"), cwd=empty)
    assert_one_line(answer, "CURRENT does not exist", "reaseq demo")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("REASEQ_GRAPH_MODE", "bogus", "Input should be 'split' or 'full'"),
        ("REASEQ_REDIS_URL", "localhost:6379", "not a Redis URL: expected redis://"),
        ("REASEQ_PORT", "eighty", "Input should be a valid integer"),
    ],
)
def test_a_bad_setting_names_its_variable(
    empty: Path, variable: str, value: str, expected: str
) -> None:
    answer = reaseq("serve", cwd=empty, **{variable: value, "REASEQ_STORE": "redis"})
    assert_one_line(answer, f"{variable}='{value}' is not valid", expected)


def test_serve_without_a_bundle_says_how_to_make_one(empty: Path) -> None:
    answer = reaseq("serve", cwd=empty)
    assert_one_line(answer, "no bundle version", "bundles/CURRENT", "reaseq demo", "make run")


def test_serve_with_an_unknown_bundle_version(empty: Path) -> None:
    build_bundle(empty / "bundles")
    answer = reaseq("serve", cwd=empty, REASEQ_BUNDLE_VERSION="nope")
    assert_one_line(answer, "bundle 'nope' not found under bundles", "reaseq demo")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("data", "--size", "huge"), "'huge' is not one of 'tiny', 'small', 'demo', 'large'"),
        (("build", "--size", "huge"), "'huge' is not one of 'tiny', 'small', 'demo', 'large'"),
        (("encode", "--reduce", "squash"), "'squash' is not one of 'truncate', 'project'"),
        (("build", "--reduce", "squash"), "'squash' is not one of 'truncate', 'project'"),
        (("build", "--format", "recbole"), "--source is required for --format recbole"),
        (("build", "--sample-users", "0"), "should be greater than or equal to 1"),
        (("knowledge", "--since", "noon"), "'--since': Input should be a valid integer"),
        (("nosuch",), "No such command 'nosuch'"),
    ],
)
def test_a_bad_option_is_one_line_with_the_choices(
    empty: Path, args: tuple[str, ...], expected: str
) -> None:
    answer = reaseq(*args, cwd=empty)
    assert_one_line(answer, expected, "--help")


def test_a_sample_that_keeps_nothing_is_one_line(empty: Path) -> None:
    source = write_recbole(empty / "recbole")
    args = ("--format", "recbole", "--source", str(source), "--since", "10", "--until", "5")
    answer = reaseq("build", *args, cwd=empty)
    assert_one_line(answer, "since (10) must come before until (5)")


@pytest.mark.parametrize("debug", [("--debug",), ("REASEQ_DEBUG", "1")])
def test_debug_shows_the_traceback(empty: Path, debug: tuple[str, ...]) -> None:
    args = ("build", "--format", "recbole", "--source", "/nope")
    if debug[0] == "--debug":
        answer = reaseq(*debug, *args, cwd=empty)
    else:
        answer = reaseq(*args, cwd=empty, **{debug[0]: debug[1]})
    assert answer.code != 0
    assert "Traceback" in answer.text
    assert answer.lines[-1] == "FileNotFoundError: /nope is not a directory"


def test_a_bug_keeps_its_traceback() -> None:
    """Only known mistakes are shortened: anything else is shown in full."""
    from cli.errors import explain

    assert explain(RuntimeError("a bug")) is None
    assert explain(ValueError("a bug")) is None
    assert explain(FileNotFoundError(2, "No such file or directory", "x.npz")) == [
        "x.npz: no such file or directory"
    ]


def test_the_command_loads_no_torch() -> None:
    code = (
        "import sys\n"
        "import cli.main, cli.errors\n"
        "assert 'torch' not in sys.modules, 'importing the command imported torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
