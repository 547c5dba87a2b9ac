"""docs/API.md is what `reaseq openapi --markdown docs/API.md` writes from the app's schema."""

from __future__ import annotations

from pathlib import Path

from cli.openapi import openapi_schema, to_markdown

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def test_the_committed_api_reference_is_up_to_date() -> None:
    expected = to_markdown(openapi_schema())
    assert API_DOC.read_text() == expected, (
        "docs/API.md is stale: run `reaseq openapi --markdown docs/API.md`"
    )


def test_the_reference_covers_every_route() -> None:
    schema = openapi_schema()
    text = API_DOC.read_text()
    for path, item in schema["paths"].items():
        for method in item:
            assert f"`{method.upper()} {path}`" in text
    assert "/v1/rank" in schema["paths"]
