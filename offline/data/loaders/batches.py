"""Dataset files read by Arrow one block at a time, with the line-by-line readers as the arbiter.

Every file a loader reads has two readers: Arrow's (``pyarrow.csv.open_csv`` or
``pyarrow.json.open_json``, explicit column types, one block of ``LoaderConfig.block_bytes`` of
text at a time, so the raw text is never all in memory) and the line-by-line one of
:mod:`.sources`, which is the definition of the format. Arrow's reader takes a file only where it
reads exactly what the line reader would: on any doubt (a line Arrow cannot parse, a value that
does not convert, Unicode spaces around a value, a byte-order mark) it raises :class:`Unusual`,
the rows it had appended are rolled back and the line reader reads that file again. A well-formed
file is read by Arrow; a broken one gets the line reader's :class:`MalformedDataError`, which
names the file, the line and what is wrong. The fallback is logged, since it is much slower.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson

from offline.data.loaders.log import Interactions
from offline.data.loaders.sources import MalformedDataError

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: What ``str.strip()`` removes: ASCII spaces, and the other characters ``str.isspace`` accepts.
ASCII_SPACE = " \t\n\r\x0b\x0c"
OTHER_SPACE = (
    "\x1c\x1d\x1e\x1f\x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_BOM = b"\xef\xbb\xbf"


class Unusual(Exception):
    """Arrow's reader leaves this file to the line-by-line reader; the message says why."""


def read_with_fallback(
    path: Path, log: Interactions | None, arrow: Callable[[], T], lines: Callable[[], T]
) -> T:
    """``arrow()``, or ``lines()`` after rolling ``log`` back if Arrow's reader had a doubt."""
    if not path.is_file():
        raise MalformedDataError(path, None, "file not found")
    mark = log.mark() if log is not None else None
    try:
        return arrow()
    except (Unusual, pa.ArrowInvalid) as reason:
        logger.info("%s: read line by line (%s)", path, str(reason).splitlines()[0])
        if log is not None and mark is not None:
            log.rollback(mark)
        found = lines()
        if log is not None:
            log.flush()
        return found


def _input(path: Path) -> pa.NativeFile:
    return pa.input_stream(str(path), compression="gzip" if path.suffix == ".gz" else None)


def _check_start(path: Path, encoding: str) -> None:
    """Arrow skips a UTF-8 byte-order mark; the line readers keep it as text."""
    if encoding.replace("-", "").lower() not in ("utf8", "utf_8"):
        return
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as handle:
        if handle.read(len(_BOM)) == _BOM:
            raise Unusual("a byte-order mark")


def require_header(path: Path, header: str) -> None:
    """Unusual unless the file's first line is ``header`` exactly (the CSV readers skip it)."""
    with path.open("rb") as handle:
        start = handle.read(len(header) + 1)
    if start not in (f"{header}\n".encode(), f"{header}\r".encode()):
        raise Unusual(f"the first line is not exactly {header}")


def csv_batches(
    path: Path,
    names: Sequence[str],
    *,
    block_bytes: int,
    delimiter: str = ",",
    quoted: bool = False,
    skip_rows: int = 0,
    encoding: str = "utf8",
    keep_empty_lines: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Record batches of string columns ``names``, one per block of about ``block_bytes``.

    ``quoted``: ``"`` quotes (doubled inside), newlines allowed in quotes, as :mod:`csv` reads
    them; otherwise a line is split at every ``delimiter``, as ``str.split`` does.
    ``keep_empty_lines``: an empty line is a row of empty strings (so rows count lines).
    """
    _check_start(path, encoding)
    read = pcsv.ReadOptions(
        column_names=list(names), skip_rows=skip_rows, block_size=block_bytes, encoding=encoding
    )
    parse = pcsv.ParseOptions(
        delimiter=delimiter,
        quote_char='"' if quoted else False,
        double_quote=quoted,
        newlines_in_values=quoted,
        ignore_empty_lines=not keep_empty_lines,
    )
    convert = pcsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    with pcsv.open_csv(_input(path), read, parse, convert) as reader:
        yield from reader


def json_batches(path: Path, schema: pa.Schema, *, block_bytes: int) -> Iterator[pa.RecordBatch]:
    """Record batches of JSON Lines objects, only the fields of ``schema``, typed as it says (a
    value of another JSON type is an ``ArrowInvalid``: the line reader then decides)."""
    _check_start(path, "utf8")
    reader = pjson.open_json(
        _input(path),
        read_options=pjson.ReadOptions(block_size=block_bytes),
        parse_options=pjson.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"
        ),
    )
    with reader:
        yield from reader


def stripped(values: pa.Array) -> pa.Array:
    """``str.strip()`` of every value; Unusual where Unicode spaces would make that uncertain."""
    result = pc.ascii_trim(values, characters=ASCII_SPACE)
    if pc.not_equal(pc.utf8_trim(result, characters=OTHER_SPACE), result).true_count:
        raise Unusual("Unicode spaces around a value")
    return result


def present(values: pa.Array) -> pa.Array:
    """Where a value is not the empty string."""
    return pc.not_equal(values, "")


def all_true(mask: pa.Array) -> bool:
    return bool(mask.false_count == 0 and mask.null_count == 0)


def integers(values: pa.Array) -> npt.NDArray[np.int64]:
    """Decimal integers (``ArrowInvalid`` for anything else: the line reader decides)."""
    return np.asarray(pc.cast(values, pa.int64()).to_numpy(), dtype=np.int64)


def floats(values: pa.Array) -> npt.NDArray[np.float64]:
    """Decimal numbers (``ArrowInvalid`` for anything else: the line reader decides)."""
    return np.asarray(pc.cast(values, pa.float64()).to_numpy(), dtype=np.float64)


def mask(values: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)
