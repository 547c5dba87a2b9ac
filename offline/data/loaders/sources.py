"""Reading public dataset files line by line, with errors that say which file and line.

Plain or gzip-compressed text (``.gz``) is opened transparently. A line that cannot be read is a
:class:`MalformedDataError` naming the file and the 1-based line number, so a broken download is
found in seconds rather than as a wrong model days later.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class MalformedDataError(ValueError):
    """A dataset file that does not follow its format."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path, self.line, self.reason = path, line, reason


def open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return path.open(encoding=encoding, newline="")


def numbered_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """``(line number, line without its newline)``, skipping blank lines."""
    if not path.is_file():
        raise MalformedDataError(path, None, "file not found")
    with open_text(path, encoding) as handle:
        for number, line in enumerate(handle, start=1):
            stripped = line.rstrip("\r\n")
            if stripped.strip():
                yield number, stripped


def find_one(directory: Path, pattern: str) -> Path:
    """The single file matching ``pattern`` in ``directory``; a clear error for none or several."""
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise MalformedDataError(directory, None, f"expected one {pattern} file, found {names}")
    return found[0]
