"""Find the JSON object in what a language model wrote, forgiving the usual slips.

Models wrap JSON in code fences, put a sentence before or after it, or leave a comma before a
closing bracket. This reads the first balanced ``{...}`` (string-aware, so braces inside strings
do not count), drops trailing commas outside strings, and parses it. Anything else is an error
whose message can be sent back to the model as a repair request.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


class JSONExtractionError(ValueError):
    """No JSON object could be read from the text."""


def _balanced_object(text: str) -> str:
    start = text.find("{")
    if start < 0:
        raise JSONExtractionError("no JSON object found (expected a '{')")
    depth, in_string, escaped = 0, False, False
    for position in range(start, len(text)):
        char = text[position]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : position + 1]
    raise JSONExtractionError("the JSON object is not closed (unbalanced braces)")


def _without_trailing_commas(text: str) -> str:
    """Drop a comma that only whitespace separates from a closing ``}`` or ``]``."""
    out: list[str] = []
    in_string, escaped = False, False
    for position, char in enumerate(text):
        if in_string:
            escaped = (char == "\\") and not escaped
            if char == '"' and not escaped:
                in_string = False
        elif char == '"':
            in_string = True
        elif char == ",":
            rest = text[position + 1 :].lstrip()
            if rest[:1] in ("}", "]"):
                continue
        out.append(char)
    return "".join(out)


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``; :class:`JSONExtractionError` if there is none."""
    fenced = _FENCE.search(text)
    candidate = _balanced_object(fenced.group(1) if fenced and "{" in fenced.group(1) else text)
    try:
        value = json.loads(_without_trailing_commas(candidate))
    except json.JSONDecodeError as error:
        raise JSONExtractionError(f"invalid JSON: {error.msg} at char {error.pos}") from None
    if not isinstance(value, dict):
        raise JSONExtractionError("expected a JSON object")
    return value
