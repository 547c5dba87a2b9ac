"""A setting the service refuses, said as one line per variable: its name, its value, what fits.

``python -m service`` and the ``reaseq`` command both say it this way (``error: <line>``, exit
status :data:`MISTAKE_EXIT`), so an operator reads the same words whichever started the service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Types only: the ``reaseq`` command imports this module for every command, light.
    from pydantic import ValidationError
    from pydantic_settings import BaseSettings

#: The exit status of a mistake the caller can fix (the status click gives a usage error).
MISTAKE_EXIT = 2
_SHOWN_CHARACTERS = 60


def setting_error_lines(error: ValidationError, settings: type[BaseSettings]) -> list[str]:
    """What is wrong with each variable ``error`` (raised building ``settings``) is about."""
    lines = []
    for field_error in error.errors():
        message = field_error["msg"].removeprefix("Value error, ")
        variable = environment_variable(field_error, settings)
        if variable is None:
            # A rule across several settings: its message names the variables.
            lines.append(message)
        else:
            lines.append(f"{variable}={_shown(field_error.get('input'))} is not valid: {message}")
    return lines


def environment_variable(field_error: Any, settings: type[BaseSettings]) -> str | None:
    """The environment variable of the settings field an error is about; None for an error
    about the settings as a whole."""
    loc = field_error.get("loc") or ()
    if not loc:
        return None
    field = str(loc[0])
    info = settings.model_fields.get(field)
    alias = getattr(info, "validation_alias", None)
    if isinstance(alias, str):
        return alias
    prefix = settings.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()


def _shown(value: object) -> str:
    text = repr(value)
    if len(text) <= _SHOWN_CHARACTERS:
        return text
    return text[: _SHOWN_CHARACTERS - 3] + "..."
