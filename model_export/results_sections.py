"""The sections of docs/RESULTS.md that commands other than ``reaseq results`` write, between
markers: each command replaces only its own and keeps the others as they are."""

from __future__ import annotations

#: The markers of the real-data section (written by model_export.real_report).
REAL_DATA_START, REAL_DATA_END = "<!-- real-data:start -->", "<!-- real-data:end -->"
#: The markers of the simulated experiment's section (model_export.experiment_section).
EXPERIMENT_START, EXPERIMENT_END = "<!-- experiment:start -->", "<!-- experiment:end -->"
#: Sections of RESULTS.md that other commands write: kept as they are, in this order.
KEPT_SECTIONS = ((REAL_DATA_START, REAL_DATA_END), (EXPERIMENT_START, EXPERIMENT_END))


def section_of(document: str, start: str, end: str) -> str | None:
    """The section between ``start`` and ``end``, markers included; None without one."""
    if start not in document or end not in document.split(start, 1)[1]:
        return None
    head = document.index(start)
    return document[head : document.index(end, head) + len(end)]


def splice_section(document: str, section: str, start: str, end: str) -> str:
    """``document`` with its section between the markers replaced by ``section`` (which holds
    them), or with ``section`` appended when it has none."""
    found = section_of(document, start, end)
    if found is None:
        return document.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    return document.replace(found, section.rstrip("\n"), 1)


def keep_section(old: str, new: str) -> str:
    """``new`` with every section of :data:`KEPT_SECTIONS` that ``old`` has, as it was."""
    for start, end in KEPT_SECTIONS:
        found = section_of(old, start, end)
        if found is not None:
            new = splice_section(new, found, start, end)
    return new
