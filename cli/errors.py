"""One error surface for the ``reaseq`` command: a mistake is one line that says what to fix.

A wrong option, path, URL or setting ends the command with ``error: …`` on stderr and exit
status 2, no traceback and no usage panel; anything else is a bug and keeps its traceback.
``reaseq --debug …`` (or ``REASEQ_DEBUG=1``) shows the traceback of a mistake too.

Exception types are looked up only in modules already imported (``sys.modules``): a command that
never touched Redis or the offline loaders cannot have failed with their errors, and this module
imports nothing heavy, so ``reaseq serve`` stays as light as it is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from service.contracts.bundle_root import CURRENT_FILE
from service.settings_errors import MISTAKE_EXIT, setting_error_lines

# Click's exception classes as Typer raises them (newer Typer carries its own copy of click),
# found from a class Typer exports.
_CLICK_CLASSES = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
ClickException: Any = _CLICK_CLASSES["ClickException"]
UsageError: Any = _CLICK_CLASSES["UsageError"]


class _NeverRaised(Exception):
    pass


#: Raised for a group called without a command (click 8.2+): its message is the help text.
NoArgsIsHelpError: Any = getattr(
    sys.modules[UsageError.__module__], "NoArgsIsHelpError", _NeverRaised
)

DEBUG_VARIABLE = "REASEQ_DEBUG"
#: What to do when no bundle is there to serve.
BUNDLE_HINT = (
    "build one with `reaseq demo` (or `make run`), or name the bundle root (--bundles, "
    "REASEQ_BUNDLE_ROOT)"
)


class ReaseqApp(typer.Typer):
    """The ``reaseq`` Typer app, run inside :func:`error_surface`; calling it exits."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Not standalone: click's own errors (a bad option) reach the surface too, instead of
        # being printed as a panel and turned into SystemExit inside click.
        kwargs["standalone_mode"] = False
        with error_surface():
            code = super().__call__(*args, **kwargs)
        raise SystemExit(code if isinstance(code, int) else 0)


_debug = False


def enable_debug(debug: bool) -> None:
    """Show tracebacks of mistakes too (the ``--debug`` option)."""
    global _debug
    _debug = _debug or debug


def debugging() -> bool:
    return _debug or os.environ.get(DEBUG_VARIABLE, "").strip().lower() in ("1", "true", "yes")


@contextmanager
def error_surface() -> Iterator[None]:
    """Turn a known mistake raised in the block into one ``error:`` line and exit status 2."""
    try:
        yield
    except NoArgsIsHelpError as error:
        error.show()  # the help text
        raise SystemExit(error.exit_code) from None
    except ClickException as error:
        typer.echo(f"error: {_click_message(error)}", err=True)
        raise SystemExit(error.exit_code) from None
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        raise SystemExit(1) from None
    except Exception as error:
        lines = None if debugging() else explain(error)
        if lines is None:
            raise
        for line in lines:
            typer.echo(f"error: {line}", err=True)
        raise SystemExit(MISTAKE_EXIT) from None


def _click_message(error: Any) -> str:
    """Click's message of a bad option, with where to read about it."""
    message = error.format_message().replace("Value error, ", "")
    context = getattr(error, "ctx", None)
    if isinstance(error, UsageError) and context is not None:
        message += f" (see `{context.command_path} --help`)"
    return message


def explain(error: BaseException) -> list[str] | None:
    """The lines that say what to fix for a known mistake; None for anything else."""
    for explainer in _EXPLAINERS:
        lines = explainer(error)
        if lines is not None:
            return lines
    return None


def _loaded(module: str, name: str) -> type[BaseException] | None:
    """The exception class ``module.name`` if that module has been imported."""
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _is(error: BaseException, module: str, name: str) -> bool:
    cls = _loaded(module, name)
    return cls is not None and isinstance(error, cls)


def _settings_error(error: BaseException) -> list[str] | None:
    """A variable the service settings refuse: its name, its value and what would fit."""
    if not _is(error, "pydantic_core", "ValidationError") or getattr(error, "title", "") != (
        "Settings"
    ):
        return None
    settings = getattr(sys.modules.get("service.settings"), "Settings", None)
    if settings is None:
        return None
    return setting_error_lines(error, settings)  # type: ignore[arg-type]


def _missing_bundle(error: BaseException) -> list[str] | None:
    if not _is(error, "service.errors", "BundleNotFoundError"):
        return None
    return [f"{error}; {BUNDLE_HINT}"]


def _broken_bundle(error: BaseException) -> list[str] | None:
    if not _is(error, "service.contracts.manifest", "BundleIntegrityError"):
        return None
    return [f"{error}; rebuild or re-copy the bundle, or serve another version"]


def _malformed_data(error: BaseException) -> list[str] | None:
    if not _is(error, "offline.data.loaders.sources", "MalformedDataError"):
        return None
    return [f"{error}; check the file against --format"]


def _redis_unreachable(error: BaseException) -> list[str] | None:
    if not (
        _is(error, "redis.exceptions", "ConnectionError")
        or _is(error, "redis.exceptions", "TimeoutError")
    ):
        return None
    return [f"cannot reach Redis: {error} Check --redis-url / REASEQ_REDIS_URL and the server."]


def _missing_path(error: BaseException) -> list[str] | None:
    if not isinstance(error, FileNotFoundError | NotADirectoryError | IsADirectoryError):
        return None
    if error.filename is None:
        return [str(error)]
    path = error.filename
    if os.path.basename(str(path)) == CURRENT_FILE:
        return [f"no bundle: {path} does not exist; {BUNDLE_HINT}"]
    return [f"{path}: {error.strerror.lower() if error.strerror else 'not found'}"]


def _refused_path(error: BaseException) -> list[str] | None:
    if not isinstance(error, PermissionError) or error.filename is None:
        return None
    return [f"{error.filename}: permission denied"]


_EXPLAINERS: list[Callable[[BaseException], list[str] | None]] = [
    _settings_error,
    _missing_bundle,
    _broken_bundle,
    _malformed_data,
    _redis_unreachable,
    _missing_path,
    _refused_path,
]
