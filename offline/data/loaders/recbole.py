"""RecBole atomic files: ``<name>.inter`` (required), ``<name>.item`` and ``<name>.user``.

Tab-separated, one header line of ``name:type`` fields (``token``, ``token_seq``, ``float``,
``float_seq``), e.g. ``user_id:token  item_id:token  rating:float  timestamp:float``. An
interaction with a ``rating`` is a click at or above the threshold; without one, every line is a
click. Without a ``timestamp`` the line number stands in for time (the file order).
From ``.item``: a title from the first field named like ``*title*`` or ``*name*``, the category
from ``class``/``genre``/``categories``/``category`` (first value under the department, the
rest as the style), plus ``brand`` and ``price`` when present.

Both files are read by Arrow one block at a time (:mod:`.batches`); a file Arrow's reader has
doubts about is read line by line, which also names a malformed line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from offline.data.canonical import Dataset
from offline.data.loaders.assemble import (
    CLICK,
    NO_BEHAVIOUR,
    ItemFields,
    LoaderConfig,
    assemble_dataset,
)
from offline.data.loaders.batches import (
    Unusual,
    csv_batches,
    floats,
    mask,
    present,
    read_with_fallback,
    stripped,
)
from offline.data.loaders.log import Interactions
from offline.data.loaders.sources import MalformedDataError, find_one, numbered_lines, open_text

FIELD_TYPES = ("token", "token_seq", "float", "float_seq")
_CATEGORY_FIELDS = ("class", "genre", "genres", "categories", "category")
Header = list[tuple[str, str]]


def _header(path: Path, line: str) -> Header:
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


def read_atomic(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows as ``(line number, {field name: raw value})``; floats are checked here. The whole
    file is checked before the first row is given, so the first broken line is the one named."""
    for _ in _checked_rows(path):
        pass
    yield from _checked_rows(path)


def _checked_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    lines = numbered_lines(path)
    first = next(lines, None)
    if first is None:
        raise MalformedDataError(path, 1, "empty file (no header)")
    fields = _header(path, first[1])
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
        yield number, {name: value for (name, _), value in zip(fields, values, strict=True)}


def _atomic_batches(
    path: Path, block_bytes: int
) -> tuple[Header, Iterator[tuple[dict[str, pa.Array], int]]]:
    """The header and Arrow batches as ``({field name: raw values}, first line number)``. Each
    line is a row (an empty one too), the header is line 1; float fields are checked."""
    with open_text(path) as handle:
        line = handle.readline().rstrip("\r\n")
    if not line.strip():
        raise Unusual("the first line is not the header")
    fields = _header(path, line)
    names = [name for name, _ in fields]
    if len(set(names)) != len(names):
        raise Unusual("a field name twice")

    def batches() -> Iterator[tuple[dict[str, pa.Array], int]]:
        number = 2
        positions = [f"f{i}" for i in range(len(fields))]
        for batch in csv_batches(
            path, positions, delimiter="\t", skip_rows=1, keep_empty_lines=True,
            block_bytes=block_bytes,
        ):  # fmt: skip
            columns = dict(zip(names, batch.columns, strict=True))
            for name, kind in fields:
                if kind == "float":
                    values = stripped(columns[name])
                    floats(values.filter(present(values)))
            yield columns, number
            number += batch.num_rows

    return fields, batches()


def _required(columns: dict[str, pa.Array], name: str) -> pa.Array:
    if name not in columns:
        raise Unusual(f"no {name} field")
    values = stripped(columns[name])
    if pc.equal(values, "").true_count:
        raise Unusual(f"an empty {name}")
    return values


def _append_interactions(
    log: Interactions, config: LoaderConfig, columns: dict[str, pa.Array], number: int
) -> None:
    user, item = _required(columns, "user_id"), _required(columns, "item_id")
    rows = len(user)
    labels = np.ones(rows, dtype=np.int8)
    if "rating" in columns:
        ratings = stripped(columns["rating"])
        rated = present(ratings)
        labels[mask(rated)] = floats(ratings.filter(rated)) >= config.click_threshold
    ts = np.arange(number, number + rows, dtype=np.int64)  # line numbers
    if "timestamp" in columns:
        stamps = stripped(columns["timestamp"])
        stamped = present(stamps)
        times = floats(stamps.filter(stamped))
        if not np.all(np.abs(times) < 2.0**63):
            raise Unusual("a timestamp out of range")
        ts[mask(stamped)] = np.trunc(times).astype(np.int64)
    events = np.where(labels > 0, CLICK, NO_BEHAVIOUR).astype(np.int8)
    log.append(user, item, ts, labels, events, np.ones(rows, dtype=bool))


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


def _arrow_items(
    path: Path, logged: pa.Array, department: str, block_bytes: int
) -> dict[str, ItemFields]:
    """Metadata of the items in the log (the others are never looked up)."""
    meta = {}
    fields, batches = _atomic_batches(path, block_bytes)
    names = [name for name, _ in fields]
    for columns, _ in batches:
        items = _required(columns, "item_id")
        kept = pc.is_in(items, value_set=logged)
        raw = [columns[name].filter(kept).to_pylist() for name in names]
        for item, values in zip(
            items.filter(kept).to_pylist(), zip(*raw, strict=True), strict=True
        ):
            meta[item] = _item_fields(dict(zip(names, values, strict=True)), department)
    return meta


def _line_items(path: Path, department: str) -> dict[str, ItemFields]:
    meta = {}
    for number, row in read_atomic(path):
        item = row.get("item_id", "").strip()
        if not item:
            raise MalformedDataError(path, number, "item_id is required")
        meta[item] = _item_fields(row, department)
    return meta


def load_recbole(directory: Path, config: LoaderConfig, department: str = "Catalogue") -> Dataset:
    inter_path = find_one(directory, "*.inter")
    log = config.log()

    def arrow() -> None:
        _, batches = _atomic_batches(inter_path, config.block_bytes)
        for columns, number in batches:
            _append_interactions(log, config, columns, number)

    def lines() -> None:
        for number, row in read_atomic(inter_path):
            user, item = row.get("user_id", "").strip(), row.get("item_id", "").strip()
            if not user or not item:
                raise MalformedDataError(inter_path, number, "user_id and item_id are required")
            rating = row.get("rating", "").strip()
            label = int(float(rating) >= config.click_threshold) if rating else 1
            stamp = row.get("timestamp", "").strip()
            ts = int(float(stamp)) if stamp else number
            log.add(user, item, ts, label=label, event=CLICK if label else NO_BEHAVIOUR)

    read_with_fallback(inter_path, log, arrow, lines)
    meta: dict[str, ItemFields] = {}
    item_files = sorted(directory.glob("*.item"))
    if item_files:
        logged = log.item_strings()
        meta = read_with_fallback(
            item_files[0],
            None,
            lambda: _arrow_items(item_files[0], logged, department, config.block_bytes),
            lambda: _line_items(item_files[0], department),
        )
    return assemble_dataset(log, meta, config, f"recbole:{inter_path.stem}", department)
