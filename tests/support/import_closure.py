"""Import every module of some of our packages as if only some distributions were installed.

Run as ``python -m tests.support.import_closure`` from the repository root, with a JSON object on
stdin: ``{"packages": [...], "skip": [...], "allowed": [...], "ours": [...]}`` (module names,
normalised distribution names, our top-level packages). A finder placed first on
``sys.meta_path`` refuses every top-level module that an installed distribution outside
``allowed`` provides, as though it were not installed (``ModuleNotFoundError``, which optional
imports catch); the standard library and our own packages are always found. The last line of
stdout is the answer: ``{"failed": [{"module", "error", "refused", "via"}]}``, ``refused``
mapping the refused modules the failure came from to their distributions, ``via`` the line of
ours that imported the first of them (``path:line``, or null).

Only the standard library is imported before the finder is in place, so nothing a package needs
is loaded early, past it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import json
import os
import pkgutil
import re
import sys
import traceback
from collections.abc import Iterator, Sequence
from importlib.metadata import packages_distributions
from types import ModuleType


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class UndeclaredFinder(importlib.abc.MetaPathFinder):
    """Refuses the top-level modules of installed distributions that are not ``allowed``, and
    remembers each refusal."""

    def __init__(self, allowed: set[str], ours: set[str]) -> None:
        self.allowed = allowed
        self.ours = ours
        self.providers = {
            module: sorted({normalised(name) for name in names})
            for module, names in packages_distributions().items()
        }
        self.refused: dict[str, list[str]] = {}

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if "." in fullname or fullname in sys.stdlib_module_names or fullname in self.ours:
            return None
        # A module that no distribution provides (a site hook) cannot be declared: the other
        # finders decide. One that several provide (a namespace package) passes when any of
        # them is allowed.
        providers = self.providers.get(fullname)
        if providers is None or self.allowed.intersection(providers):
            return None
        self.refused[fullname] = providers
        raise ModuleNotFoundError(
            f"No module named {fullname!r} (refused: {', '.join(providers)} not declared)",
            name=fullname,
        )


def _importer(error: BaseException) -> str | None:
    """``path:line`` of the last frame of ours (not an installed distribution's, nor this
    file's) in the traceback of ``error``."""
    root = os.getcwd() + os.sep
    ours = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename.startswith(root)
        and not frame.filename.startswith(sys.prefix + os.sep)
        and frame.filename != __file__
    ]
    if not ours:
        return None
    return f"{os.path.relpath(ours[-1].filename, root)}:{ours[-1].lineno}"


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def import_all(
    packages: list[str], skip: set[str], finder: UndeclaredFinder
) -> list[dict[str, object]]:
    """Import each package and every module under it, less ``skip`` and what lies under those:
    what failed, and why. The modules of a package that fails are not tried."""
    failed: list[dict[str, object]] = []

    def visit(name: str) -> None:
        if any(name == s or name.startswith(f"{s}.") for s in skip):
            return
        finder.refused.clear()
        try:
            module = importlib.import_module(name)
        except BaseException as error:  # a module may also exit, or fail in any other way
            causes = [
                cause
                for cause in _chain(error)
                if isinstance(cause, ImportError) and cause.name in finder.refused
            ]
            failed.append(
                {
                    "module": name,
                    "error": "".join(traceback.format_exception_only(error)).strip(),
                    "refused": {c.name: finder.refused[c.name] for c in causes if c.name},
                    "via": _importer(causes[0]) if causes else None,
                }
            )
            return
        for info in pkgutil.iter_modules(getattr(module, "__path__", []), f"{name}."):
            visit(info.name)

    for package in packages:
        visit(package)
    return failed


def main() -> None:
    request = json.load(sys.stdin)
    finder = UndeclaredFinder(set(request["allowed"]), set(request["ours"]))
    sys.meta_path.insert(0, finder)
    failed = import_all(request["packages"], set(request["skip"]), finder)
    # The imports may have written to stdout (a banner, a warning): the answer is the last line.
    print("\n" + json.dumps({"failed": failed}), flush=True)


if __name__ == "__main__":
    main()
