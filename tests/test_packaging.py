"""Every third-party import is declared: in the dependencies or in an extra serving its package.

Two checks. A static read of the source (``ast``, every import, also the ones inside functions
and behind ``try``), so a module that only the load test, a benchmark or an optional backend
imports cannot ship with an undeclared dependency that the development venv happens to hold.
Import names are mapped to distributions with ``importlib.metadata`` (the installed ones), else by
the table below. And each install, run: a Python process that can import only what the install's
requirements pull in imports every module of the packages it runs, so a dependency that comes
in through another of our packages, or through an import the source does not spell out, is
caught too (:mod:`tests.support.import_closure`).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support.import_closure import normalised

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Install:
    """Extras installed together, on top of the dependencies, and the packages (or subpackages)
    that run with them: every module of those must import with what the extras pull in."""

    extras: tuple[str, ...]
    packages: tuple[str, ...]
    #: Modules left out, each with the reason (what lies under them too).
    skip: Mapping[str, str] = field(default_factory=dict)
    #: Checked with the slow tests only (``make test-all``).
    slow: bool = False

    @property
    def name(self) -> str:
        return "+".join(self.extras)


#: The device path runs where PyTorch and the kernels are installed (the kernels installs below),
#: never in the plain serving install, which has no PyTorch.
_DEVICE_PATH = {"service.device": "the device path: PyTorch, with the kernels extra"}
#: The pipelines on Ray Data run with the scale extra, never in the plain offline install.
_RAY_PIPELINES = {"offline.scale": "the pipelines on Ray Data, with the scale extra"}
#: Modules of a GPU library that an install's markers leave out on some platforms (Triton is
#: Linux-only): skipped where that distribution is not part of the install, checked where it is.
GPU_MODULES = {"kernels.target_attention.triton": "triton"}
#: The installs that run our packages: the images (Dockerfile: cpu, gpu, demo, loadtest) and the
#: make targets (chaos, bench).
INSTALLS = (
    # The serving images run `reaseq serve`.
    Install(("cpu",), ("service", "cli"), skip=_DEVICE_PATH),
    Install(("gpu",), ("service", "cli"), skip=_DEVICE_PATH),
    Install(("cpu", "tracing"), ("service",), skip=_DEVICE_PATH),
    Install(("cpu", "kernels"), ("kernels", "service.device")),
    Install(("gpu", "kernels"), ("kernels", "service.device")),
    # The demo image; the offline side loads bundles in ONNX Runtime as the service does.
    Install(("cpu", "train"), ("offline", "model_export", "cli"), skip=_RAY_PIPELINES),
    Install(("cpu", "train", "st"), ("offline", "model_export"), skip=_RAY_PIPELINES),
    # `reaseq scale`: the offline side on Ray Data.
    Install(("cpu", "train", "scale"), ("offline.scale", "cli")),
    Install(("loadtest",), ("loadtest",)),
    # make chaos: it builds its bundles and serves them.
    Install(("loadtest", "cpu", "train"), ("chaos",)),
    # make bench: the same, and the Ray Serve peer. It imports the most (Ray, PyTorch, Locust,
    # scikit-learn): checked with the slow tests, so that the import checks of `make test` stay
    # within half a minute.
    Install(("loadtest", "cpu", "train", "peer"), ("bench",), slow=True),
)


def _extras_serving(package: str) -> tuple[str, ...]:
    """The extras of every install that runs ``package`` or a subpackage of it."""
    extras = (
        extra
        for install in INSTALLS
        if any(p.partition(".")[0] == package for p in install.packages)
        for extra in install.extras
    )
    return tuple(dict.fromkeys(extras))


#: The extras whose installs run each package, besides the dependencies every install has; the
#: tests need them all.
SERVED_BY: dict[str, tuple[str, ...]] = {
    package: _extras_serving(package)
    for package in dict.fromkeys(p.partition(".")[0] for i in INSTALLS for p in i.packages)
} | {"tests": ("cpu", "gpu", "tracing", "loadtest", "kernels", "train", "st", "scale", "dev")}
#: Distributions of import names that may not be installed here (GPU-only, optional backends).
KNOWN_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "pynvml": ("nvidia-ml-py",),
    "sentence_transformers": ("sentence-transformers",),
    "sklearn": ("scikit-learn",),
    "faiss": ("faiss-cpu", "faiss-gpu"),
    "yaml": ("pyyaml",),
}


@cache
def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings (``uvicorn[standard]>=0.29`` -> uvicorn)."""
    found = (re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r) for r in requirements)
    return {normalised(m.group(0)) for m in found if m}


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
    return {normalised(name) for name in (*installed, *known)}


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


def _required(requirements: Iterable[str], extras: set[str]) -> Iterator[Requirement]:
    """The requirements whose environment markers hold here, for a distribution installed with
    ``extras``."""
    for line in requirements:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
            yield requirement


def closure(requirements: Iterable[str]) -> tuple[set[str], set[str]]:
    """The distributions ``requirements`` pull in, followed through the installed ones'
    metadata with their extras and markers, and those among them that are not installed."""
    wanted: dict[str, set[str]] = {}
    missing: set[str] = set()
    pending = list(_required(requirements, set()))
    while pending:
        requirement = pending.pop()
        name = normalised(requirement.name)
        had = wanted.get(name)
        if had is not None and requirement.extras <= had:
            continue
        extras = wanted[name] = (had or set()) | requirement.extras
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            missing.add(name)
            continue
        pending += _required(requires, extras)
    return set(wanted), missing


def _install_requirements(install: Install) -> list[str]:
    extras: dict[str, list[str]] = _project()["optional-dependencies"]  # type: ignore[assignment]
    requirements: list[str] = list(_project()["dependencies"])  # type: ignore[call-overload]
    return requirements + [line for extra in install.extras for line in extras[extra]]


def failed_imports(
    packages: Iterable[str], skip: Iterable[str], allowed: set[str]
) -> list[dict[str, object]]:
    """The modules of ``packages`` (less ``skip``) that fail to import in a process that can
    import only the ``allowed`` distributions, the standard library and ours."""
    request = {
        "packages": list(packages),
        "skip": list(skip),
        "allowed": sorted(allowed),
        "ours": sorted(_our_packages() | {"tests"}),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.import_closure"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    failed: list[dict[str, object]] = json.loads(result.stdout.splitlines()[-1])["failed"]
    return failed


def _described(failure: Mapping[str, object]) -> str:
    refused: dict[str, list[str]] = failure["refused"]  # type: ignore[assignment]
    if not refused:
        return f"{failure['module']}: {failure['error']}"
    missing = "; ".join(
        f"{module} (distribution {', '.join(names)})" for module, names in refused.items()
    )
    return f"{failure['module']} imports {missing}, at {failure['via']}"


@pytest.mark.parametrize(
    "install",
    [pytest.param(i, id=i.name, marks=[pytest.mark.slow] if i.slow else []) for i in INSTALLS],
)
def test_each_install_imports_every_module_it_runs(install: Install) -> None:
    allowed, missing = closure(_install_requirements(install))
    if missing:
        pytest.skip(f"not installed here: {', '.join(sorted(missing))}")
    gpu_only = [module for module, name in GPU_MODULES.items() if name not in allowed]
    failed = failed_imports(install.packages, [*install.skip, *gpu_only], allowed)
    assert not failed, (
        f"reaseq-ranking[{','.join(install.extras)}] alone: {len(failed)} modules of "
        f"{', '.join(install.packages)} fail to import; declare what they import in the extra "
        "that serves them, or import it only where that extra is installed:\n"
        + "\n".join(_described(failure) for failure in failed)
    )


def test_an_import_outside_the_install_fails_with_its_distribution() -> None:
    """The load test without its extra: Locust is refused, and named."""
    allowed, _ = closure(_project()["dependencies"])  # type: ignore[arg-type]
    failed = failed_imports(["loadtest"], [], allowed)
    locustfile = next(f for f in failed if f["module"] == "loadtest.locustfile")
    assert _described(locustfile).startswith(
        "loadtest.locustfile imports locust (distribution locust), at loadtest/locustfile.py:"
    )
