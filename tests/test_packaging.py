"""Every third-party import is declared: in the dependencies or in an extra serving its package.

A static read of the source (``ast``, every import, also the ones inside functions and behind
``try``), so a module that only the load test, a benchmark or an optional backend imports cannot
ship with an undeclared dependency that the development venv happens to hold. Import names are
mapped to distributions with ``importlib.metadata`` (the installed ones), else by the table below.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The extras whose installs run each package, besides the dependencies every install has.
SERVED_BY: dict[str, tuple[str, ...]] = {
    "service": ("cpu", "gpu", "tracing", "kernels"),
    "kernels": ("cpu", "gpu", "kernels"),
    "model_export": ("cpu", "train", "st"),
    "offline": ("train", "st"),
    # A thin layer: each command imports the side it runs, the offline one included.
    "cli": ("cpu", "train"),
    "loadtest": ("loadtest",),
    "bench": ("loadtest", "cpu", "train", "peer"),
    "chaos": ("loadtest",),
    "tests": ("cpu", "gpu", "tracing", "loadtest", "kernels", "train", "st", "dev"),
}
#: Distributions of import names that may not be installed here (GPU-only, optional backends).
KNOWN_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "pynvml": ("nvidia-ml-py",),
    "sentence_transformers": ("sentence-transformers",),
    "sklearn": ("scikit-learn",),
    "faiss": ("faiss-cpu", "faiss-gpu"),
    "yaml": ("pyyaml",),
}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings (``uvicorn[standard]>=0.29`` -> uvicorn)."""
    found = (re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r) for r in requirements)
    return {_normalised(m.group(0)) for m in found if m}


def declared_for(package: str) -> set[str]:
    extras: dict[str, list[str]] = _project()["optional-dependencies"]  # type: ignore[assignment]
    declared = _names(_project()["dependencies"])  # type: ignore[arg-type]
    for extra in SERVED_BY[package]:
        declared |= _names(extras[extra])
    return declared


def _our_packages() -> set[str]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]}


def third_party_imports(package: str) -> Iterator[tuple[str, Path]]:
    """``(top-level module, file)`` of every import in ``package`` that is neither the standard
    library nor one of ours."""
    ours = _our_packages() | {"tests"}
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in ours and top != "__future__":
                    yield top, path.relative_to(ROOT)


@cache
def _installed() -> Mapping[str, list[str]]:
    return packages_distributions()


def distributions_of(module: str) -> set[str]:
    installed = _installed().get(module, [])
    known = KNOWN_DISTRIBUTIONS.get(module, (module,))
    return {_normalised(name) for name in (*installed, *known)}


def test_every_packaged_folder_says_which_extras_serve_it() -> None:
    assert _our_packages() | {"tests"} == set(SERVED_BY)


@pytest.mark.parametrize("package", sorted(SERVED_BY))
def test_every_import_is_declared(package: str) -> None:
    declared = declared_for(package)
    undeclared: dict[str, list[str]] = {}
    for module, path in third_party_imports(package):
        if not distributions_of(module) & declared:
            paths = undeclared.setdefault(module, [])
            if str(path) not in paths:
                paths.append(str(path))
    extras = ", ".join(SERVED_BY[package])
    assert not undeclared, (
        f"{package}/ imports what neither the dependencies nor its extras ({extras}) declare: "
        + "; ".join(f"{module} ({', '.join(paths[:3])})" for module, paths in undeclared.items())
    )
