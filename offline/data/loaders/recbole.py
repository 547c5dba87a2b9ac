"""RecBole atomic files: ``<name>.inter`` (required), ``<name>.item`` and ``<name>.user``.

Tab-separated, one header line of ``name:type`` fields (``token``, ``token_seq``, ``float``,
``float_seq``), e.g. ``user_id:token  item_id:token  rating:float  timestamp:float``. An
interaction with a ``rating`` is a click at or above the threshold; without one, every line is a
click. Without a ``timestamp`` the line number stands in for time (the file order).
From ``.item``: a title from the first field named like ``*title*`` or ``*name*``, the category
from ``class``/``genre``/``categories``/``category`` (first value under the department, the
rest as the style), plus ``brand`` and ``price`` when present.
"""

from __future__ import annotations

from pathlib import Path

from offline.data.canonical import Dataset
from offline.data.loaders.assemble import (
    CLICK,
    NO_BEHAVIOUR,
    Interactions,
    ItemFields,
    LoaderConfig,
    assemble_dataset,
)
from offline.data.loaders.sources import MalformedDataError, find_one, numbered_lines

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
_CATEGORY_FIELDS = ("class", "genre", "genres", "categories", "category")


def _header(path: Path, line: str) -> list[tuple[str, str]]:
    fields = []
    for column in line.split("\t"):
        name, _, kind = column.strip().partition(":")
        if kind not in FIELD_TYPES:
            raise MalformedDataError(
                path,
                1,
                f"header field {column!r} is not name:type with type"
                f" one of {', '.join(FIELD_TYPES)}",
            )
        fields.append((name, kind))
    return fields


def read_atomic(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Rows as ``(line number, {field name: raw value})``; floats are checked here."""
    lines = numbered_lines(path)
    first = next(lines, None)
    if first is None:
        raise MalformedDataError(path, 1, "empty file (no header)")
    fields = _header(path, first[1])
    rows = []
    for number, line in lines:
        values = line.split("\t")
        if len(values) != len(fields):
            raise MalformedDataError(
                path, number, f"expected {len(fields)} tab-separated fields, got {len(values)}"
            )
        for (name, kind), value in zip(fields, values, strict=True):
            if kind == "float" and value.strip():
                try:
                    float(value)
                except ValueError:
                    raise MalformedDataError(
                        path, number, f"{name}: {value!r} is not a float"
                    ) from None
        rows.append(
            (number, {name: value for (name, _), value in zip(fields, values, strict=True)})
        )
    return rows


def _item_fields(row: dict[str, str], department: str) -> ItemFields:
    fields = ItemFields()
    title = next((v for k, v in row.items() if "title" in k or "name" in k), "")
    fields.title = title.strip()
    category = next((row[k] for k in _CATEGORY_FIELDS if row.get(k, "").strip()), "")
    classes = [c.replace("_", " ").strip() for c in category.replace(",", " ").split()]
    if classes:
        fields.category_path = f"{department}>{classes[0][:1].upper()}{classes[0][1:]}"
        fields.style = ", ".join(c.lower() for c in classes[1:])
    fields.brand = row.get("brand", "").strip()
    try:
        fields.price = float(row.get("price", "") or 0.0)
    except ValueError:
        fields.price = 0.0
    return fields


def load_recbole(directory: Path, config: LoaderConfig, department: str = "Catalogue") -> Dataset:
    inter_path = find_one(directory, "*.inter")
    log = Interactions()
    for number, row in read_atomic(inter_path):
        user, item = row.get("user_id", "").strip(), row.get("item_id", "").strip()
        if not user or not item:
            raise MalformedDataError(inter_path, number, "user_id and item_id are required")
        rating = row.get("rating", "").strip()
        label = int(float(rating) >= config.click_threshold) if rating else 1
        stamp = row.get("timestamp", "").strip()
        ts = int(float(stamp)) if stamp else number
        log.add(user, item, ts, label=label, event=CLICK if label else NO_BEHAVIOUR)
    meta: dict[str, ItemFields] = {}
    item_files = sorted(directory.glob("*.item"))
    if item_files:
        for number, row in read_atomic(item_files[0]):
            item = row.get("item_id", "").strip()
            if not item:
                raise MalformedDataError(item_files[0], number, "item_id is required")
            meta[item] = _item_fields(row, department)
    return assemble_dataset(log, meta, config, f"recbole:{inter_path.stem}", department)
