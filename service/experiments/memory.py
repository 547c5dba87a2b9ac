"""What an extra bundle costs in memory: the process's resident set before and after it is
loaded, warmed and probed, and its files' size on disk.

The resident-set difference is an estimate: whatever else the process allocates or frees
meanwhile (requests served during the load) counts too, and memory freed later is not seen. The
on-disk size is exact, and a floor for the graphs and the item table once loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_STATM = Path("/proc/self/statm")


@dataclass(frozen=True, slots=True)
class BundleMemory:
    """The memory estimate of one loaded bundle."""

    resident_bytes: int | None  # growth of the process's resident set; None off Linux
    disk_bytes: int  # its folder's files


def resident_bytes() -> int | None:
    """The process's resident set size now (from ``/proc/self/statm``); None where there is
    no ``/proc``."""
    try:
        pages = int(_STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def disk_bytes(directory: Path) -> int:
    """The size of every file under ``directory``."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def growth(before: int | None, after: int | None) -> int | None:
    """How much the resident set grew (never negative: a collection may free more meanwhile)."""
    if before is None or after is None:
        return None
    return max(0, after - before)
