"""``reaseq openapi``: the app's OpenAPI schema as JSON, or as the Markdown of docs/API.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
SCHEMA_PREFIX = "#/components/schemas/"


def openapi_schema() -> dict[str, Any]:
    """The schema FastAPI serves at /openapi.json; building the app loads no bundle."""
    from service.app import create_app
    from service.settings import Settings

    # Defaults, not this environment's REASEQ_* values: the reference must not depend on them.
    return create_app(Settings.model_construct()).openapi()


def type_of(schema: dict[str, Any]) -> str:
    """A short, readable type: ``RankItem``, ``array of string``, ``integer or null``."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(SCHEMA_PREFIX)
        return f"[`{name}`](#{name.lower()})"
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return " or ".join(type_of(option) for option in schema[combinator])
    if schema.get("type") == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if schema.get("type") == "object" and "additionalProperties" in schema:
        values = schema["additionalProperties"]
        return f"object of {type_of(values) if isinstance(values, dict) else 'any'}"
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    return str(schema.get("type", "any"))


def constraints(schema: dict[str, Any]) -> str:
    """The bounds of a field (of its non-null option, for ``X or null``) and its default."""
    keys = ("minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "minItems")
    options = [schema, *schema.get("anyOf", [])]
    found = [f"{key} {option[key]}" for option in options for key in keys if key in option]
    found += [f"maxItems {schema['maxItems']}"] if "maxItems" in schema else []
    found += ["unique items"] if schema.get("uniqueItems") else []
    if "default" in schema:
        found.append(f"default `{json.dumps(schema['default'])}`")
    return ", ".join(found)


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def operation_lines(
    path: str, method: str, operation: dict[str, Any], schemes: dict[str, Any]
) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    if operation.get("summary"):
        lines += [f"**{operation['summary']}**", ""]
    if operation.get("description"):
        lines += [operation["description"].strip(), ""]
    for name in (name for requirement in operation.get("security", []) for name in requirement):
        scheme = schemes[name]
        lines += [
            f"Authentication (`{name}`): `{scheme['name']}` {scheme['in']}. "
            f"{cell(scheme.get('description', ''))}",
            "",
        ]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += [
            "| parameter | in | type | required | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for p in parameters:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {type_of(p.get('schema', {}))} | "
                f"{'yes' if p.get('required') else 'no'} | {cell(p.get('description', ''))} |"
            )
        lines.append("")
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        lines += [f"Request body: {type_of(body['schema'])}", ""]
    lines += ["| status | description | body |", "| --- | --- | --- |"]
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        media: dict[str, Any] = content.get("application/json") or next(iter(content.values()), {})
        shown = type_of(media["schema"]) if media.get("schema") else ""
        lines.append(f"| {status} | {cell(response.get('description', ''))} | {shown} |")
    return [*lines, ""]


def schema_lines(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [cell(schema["description"]), ""]
    properties = schema.get("properties", {})
    if not properties:
        return [*lines, f"Type: {type_of(schema)}", ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
    for field, spec in properties.items():
        notes = "; ".join(part for part in (spec.get("description", ""), constraints(spec)) if part)
        lines.append(
            f"| `{field}` | {type_of(spec)} | {'yes' if field in required else 'no'} | "
            f"{cell(notes)} |"
        )
    return [*lines, ""]


def to_markdown(schema: dict[str, Any]) -> str:
    info = schema["info"]
    lines = [
        f"# {info['title']} — HTTP API (version {info['version']})",
        "",
        "<!-- Generated from the app's OpenAPI schema by `reaseq openapi --markdown docs/API.md`;",
        "     do not edit by hand. The running service serves the same schema at /openapi.json",
        "     and an interactive view at /docs. -->",
        "",
    ]
    if info.get("summary"):
        lines += [info["summary"], ""]
    lines += ["## Endpoints", ""]
    schemes = schema.get("components", {}).get("securitySchemes", {})
    for path, item in schema["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                lines += operation_lines(path, method, item[method], schemes)
    lines += ["## Schemas", ""]
    for name, component in sorted(schema.get("components", {}).get("schemas", {}).items()):
        lines += schema_lines(name, component)
    return "\n".join(lines).rstrip() + "\n"


def openapi(
    markdown: Annotated[
        Path | None, typer.Option(help="Write the Markdown reference here (docs/API.md).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the OpenAPI JSON here.")
    ] = None,
) -> None:
    """Print the OpenAPI schema, or write it as JSON and/or as the Markdown API reference."""
    schema = openapi_schema()
    if markdown is None and json_out is None:
        typer.echo(json.dumps(schema, indent=2))
    if json_out is not None:
        json_out.write_text(json.dumps(schema, indent=2) + "\n")
        typer.echo(f"OpenAPI JSON -> {json_out}")
    if markdown is not None:
        markdown.write_text(to_markdown(schema))
        typer.echo(f"API reference -> {markdown}")


def register(app: typer.Typer) -> None:
    """Add ``reaseq openapi`` to the ``reaseq`` app."""
    app.command()(openapi)
