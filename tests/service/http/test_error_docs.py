"""docs/OPERATIONS.md lists every error a user can see: each ``code`` of service/errors.py with its
status, each degradation reason, and the command line's error surface."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli.errors import DEBUG_VARIABLE, MISTAKE_EXIT
from service.errors import ServiceError
from service.http.errors import FRAMEWORK_STATUSES, framework_code, http_status
from service.ranking.result import Degradation

OPERATIONS = Path(__file__).resolve().parents[3] / "docs" / "OPERATIONS.md"
SECTION = "## Errors a user can see"


def _section(title: str) -> str:
    """The text under the heading ``title``, up to the next heading of its level or above."""
    text = OPERATIONS.read_text()
    start = text.index(f"\n{title}\n") + 1
    level = len(title) - len(title.lstrip("#"))
    following = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, start + len(title))
    return text[start : following.start() if following else len(text)]


def _errors() -> list[type[ServiceError]]:
    found: list[type[ServiceError]] = [ServiceError]
    for cls in found:
        found += [sub for sub in cls.__subclasses__() if sub not in found]
    return found


def _documented_statuses() -> dict[str, set[int]]:
    """``code`` -> the statuses of the rows of the HTTP table that name it."""
    rows = re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", _section("### HTTP answers"), re.M)
    statuses: dict[str, set[int]] = {}
    for status, code in rows:
        statuses.setdefault(code, set()).add(int(status))
    return statuses


@pytest.mark.parametrize("error", _errors(), ids=lambda cls: cls.code)
def test_every_domain_error_is_documented_with_its_status(error: type[ServiceError]) -> None:
    expected = http_status(error.__new__(error))
    assert _documented_statuses().get(error.code) == {expected}, (
        f"docs/OPERATIONS.md, {SECTION}: no row `| {expected} | `{error.code}` |`"
    )


@pytest.mark.parametrize("status", FRAMEWORK_STATUSES)
def test_every_framework_error_is_documented(status: int) -> None:
    assert _documented_statuses().get(framework_code(status)) == {status}


@pytest.mark.parametrize("reason", list(Degradation))
def test_every_degradation_is_documented(reason: Degradation) -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \|", _section("### Degraded answers"), re.M)
    assert reason.value in rows


def test_the_command_line_errors_are_documented() -> None:
    section = _section("### Command line")
    assert f"status {MISTAKE_EXIT}" in section
    assert "--debug" in section and DEBUG_VARIABLE in section
    assert section.count("| `error: ") + section.count("| ``error: ") >= 10
