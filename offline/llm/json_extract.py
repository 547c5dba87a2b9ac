"""Find the JSON object in what a language model wrote, forgiving the usual slips.

Models wrap JSON in code fences, put a sentence before or after it, leave a comma before a closing
bracket, quote with apostrophes or forget a quote. ``json_repair`` reads past all of that; when the
text holds several JSON values, the first object is the answer. Text with no object in it is an
error whose message can be sent back to the model as a repair request. A repaired object can still
be wrong for its schema: the caller validates it.
"""

from __future__ import annotations

from typing import Any

import json_repair


class JSONExtractionError(ValueError):
    """No JSON object could be read from the text."""


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``; :class:`JSONExtractionError` if there is none."""
    try:
        value = json_repair.loads(text)
    except (ValueError, RecursionError) as error:
        raise JSONExtractionError(f"unreadable JSON: {error}") from None
    values = value if isinstance(value, list) else [value]
    found = next((v for v in values if isinstance(v, dict)), None)
    if found is None:
        raise JSONExtractionError("no JSON object found (expected a '{...}' object)")
    return found
