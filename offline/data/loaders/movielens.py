"""MovieLens, in either of its two layouts; the folder's files say which.

* **1M** ``.dat`` files (``::``-separated, latin-1): ``ratings.dat``
  (``UserID::MovieID::Rating::Timestamp``) and ``movies.dat`` (``MovieID::Title::Genres``).
* **latest / latest-small** CSV files (UTF-8, quoted): ``ratings.csv``
  (``userId,movieId,rating,timestamp``), ``movies.csv`` (``movieId,title,genres``) and
  ``tags.csv`` (``userId,movieId,tag,timestamp``, user-written tags).

Every field becomes item metadata: ``|``-separated genres give the category
(``Movies><first genre>``) and the style (the other genres, lower case); the title keeps its
words and loses its ``(year)``, which becomes the description (``released 1995, 1990s``); tags
become keywords (only those written before the split, see :mod:`.assemble`).

Ratings, movies and tags are read by Arrow one block at a time (:mod:`.batches`), except
``movies.dat`` (a few thousand lines whose titles may hold the ``:`` Arrow would split at); a file
Arrow's reader has doubts about is read line by line, which also names a malformed line.
"""

from __future__ import annotations

import csv
import re
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
    all_true,
    csv_batches,
    floats,
    integers,
    read_with_fallback,
    require_header,
)
from offline.data.loaders.log import Interactions
from offline.data.loaders.sources import MalformedDataError, numbered_lines, open_text

ENCODING = "latin-1"
DEPARTMENT = "Movies"
RATINGS = ("userId", "movieId", "rating", "timestamp")
MOVIES = ("movieId", "title", "genres")
TAGS = ("userId", "movieId", "tag", "timestamp")
#: ``ratings.dat`` split at every ``:``: the fields, with an empty one between each two.
_DAT_RATINGS = ("user", "gap1", "movie", "gap2", "rating", "gap3", "timestamp")


def _fields(path: Path, number: int, line: str, count: int) -> list[str]:
    values = line.split("::")
    if len(values) != count:
        raise MalformedDataError(
            path, number, f"expected {count} '::'-separated fields, got {len(values)}"
        )
    return values


_YEAR = re.compile(r"\s*\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")
NO_GENRES = "(no genres listed)"


def movie_fields(title: str, genres: str) -> ItemFields:
    """Title without its year, the year as a description, genres as category and style."""
    names = [g.strip() for g in genres.split("|") if g.strip() and g.strip() != NO_GENRES]
    found = _YEAR.search(title)
    description = ""
    if found:
        year = int(found.group(1))
        description = f"released {year}, {year // 10 * 10}s"
        title = title[: found.start()]
    return ItemFields(
        title=title.strip(),
        category_path=f"{DEPARTMENT}>{names[0]}" if names else "",
        style=", ".join(g.lower() for g in names[1:]),
        description=description,
    )


def _add_rating(
    log: Interactions,
    config: LoaderConfig,
    where: tuple[Path, int],
    user: str,
    movie: str,
    rating: str,
    stamp: str,
) -> None:
    """One rating as a click (at or above the threshold) or an observed non-click."""
    try:
        label = int(float(rating) >= config.click_threshold)
        ts = int(stamp)
    except ValueError:
        raise MalformedDataError(*where, "rating and timestamp must be numbers") from None
    log.add(user, movie, ts, label=label, event=CLICK if label else NO_BEHAVIOUR)


def _append_ratings(log: Interactions, config: LoaderConfig, batch: list[pa.Array]) -> None:
    """A batch of ratings (user, movie, rating, timestamp), as :func:`_add_rating` takes each."""
    user, movie, rating, stamp = batch
    labels = (floats(rating) >= config.click_threshold).astype(np.int8)
    events = np.where(labels > 0, CLICK, NO_BEHAVIOUR).astype(np.int8)
    log.append(user, movie, integers(stamp), labels, events, np.ones(len(labels), dtype=bool))


def load_movielens(directory: Path, config: LoaderConfig) -> Dataset:
    """The 1M layout when ``ratings.dat`` is there, else the CSV layout of latest(-small)."""
    if not (directory / "ratings.dat").is_file() and (directory / "ratings.csv").is_file():
        return load_movielens_csv(directory, config)
    ratings, log = directory / "ratings.dat", config.log()

    def arrow() -> None:
        for batch in csv_batches(
            ratings, _DAT_RATINGS, delimiter=":", encoding=ENCODING, block_bytes=config.block_bytes
        ):
            if not all(all_true(pc.equal(batch.column(i), "")) for i in (1, 3, 5)):
                raise Unusual("a ':' inside a field")
            _append_ratings(log, config, [batch.column(i) for i in (0, 2, 4, 6)])

    def lines() -> None:
        for number, line in numbered_lines(ratings, ENCODING):
            _add_rating(log, config, (ratings, number), *_fields(ratings, number, line, 4))

    read_with_fallback(ratings, log, arrow, lines)
    meta: dict[str, ItemFields] = {}
    movies = directory / "movies.dat"
    if movies.is_file():
        for number, line in numbered_lines(movies, ENCODING):
            movie, title, genres = _fields(movies, number, line, 3)
            meta[movie] = movie_fields(title, genres)
    return assemble_dataset(log, meta, config, "movielens-1m", DEPARTMENT)


def _csv_rows(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of a CSV file whose first line must be ``header``. The whole
    file is checked before the first row is given, so the first broken line is the one named."""
    for _ in _checked_rows(path, header):
        pass
    yield from _checked_rows(path, header)


def _checked_rows(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    if not path.is_file():
        raise MalformedDataError(path, None, "file not found")
    with open_text(path) as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None or [f.strip() for f in first] != list(header):
            raise MalformedDataError(path, 1, f"expected the header {','.join(header)}")
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(header):
                raise MalformedDataError(
                    path, reader.line_num, f"expected {len(header)} fields, got {len(fields)}"
                )
            yield reader.line_num, fields


def _csv_batches(path: Path, header: tuple[str, ...], block_bytes: int) -> Iterator[pa.RecordBatch]:
    require_header(path, ",".join(header))
    yield from csv_batches(path, header, quoted=True, skip_rows=1, block_bytes=block_bytes)


def load_movielens_csv(directory: Path, config: LoaderConfig) -> Dataset:
    ratings, log = directory / "ratings.csv", config.log()

    def arrow_ratings() -> None:
        for batch in _csv_batches(ratings, RATINGS, config.block_bytes):
            _append_ratings(log, config, batch.columns)

    def line_ratings() -> None:
        for number, fields in _csv_rows(ratings, RATINGS):
            _add_rating(log, config, (ratings, number), *fields)

    read_with_fallback(ratings, log, arrow_ratings, line_ratings)
    logged = log.item_strings()
    meta: dict[str, ItemFields] = {}
    movies = directory / "movies.csv"
    if movies.is_file():
        meta = read_with_fallback(
            movies,
            None,
            lambda: _arrow_movies(movies, logged, config.block_bytes),
            lambda: _line_movies(movies),
        )
    tags = directory / "tags.csv"
    if tags.is_file():
        found = read_with_fallback(
            tags,
            None,
            lambda: _arrow_tags(tags, logged, config.block_bytes),
            lambda: _line_tags(tags),
        )
        for movie, tag, stamp in found:
            meta.setdefault(movie, ItemFields()).keywords.append((tag, stamp))
    return assemble_dataset(log, meta, config, "movielens-csv", DEPARTMENT)


def _arrow_movies(path: Path, logged: pa.Array, block_bytes: int) -> dict[str, ItemFields]:
    """Metadata of the movies in the log (the others are never looked up)."""
    meta = {}
    for batch in _csv_batches(path, MOVIES, block_bytes):
        rows = batch.filter(pc.is_in(batch.column(0), value_set=logged))
        for movie, title, genres in zip(*(c.to_pylist() for c in rows.columns), strict=True):
            meta[movie] = movie_fields(title, genres)
    return meta


def _arrow_tags(path: Path, logged: pa.Array, block_bytes: int) -> list[tuple[str, str, int]]:
    """``(movie, tag, timestamp)`` of the tags of movies in the log, in file order."""
    found: list[tuple[str, str, int]] = []
    for batch in _csv_batches(path, TAGS, block_bytes):
        stamps = batch.column(3)
        if not all_true(pc.match_substring_regex(stamps, "^[0-9]+$")):
            raise Unusual("a timestamp that is not plain digits")
        kept = pc.is_in(batch.column(1), value_set=logged)
        movies, words = batch.column(1).filter(kept), batch.column(2).filter(kept)
        stamp_values = integers(stamps.filter(kept)).tolist()
        found += zip(movies.to_pylist(), words.to_pylist(), stamp_values, strict=True)
    return found


def _line_movies(path: Path) -> dict[str, ItemFields]:
    return {
        movie: movie_fields(title, genres) for _, (movie, title, genres) in _csv_rows(path, MOVIES)
    }


def _line_tags(path: Path) -> list[tuple[str, str, int]]:
    found = []
    for number, (_, movie, tag, stamp) in _csv_rows(path, TAGS):
        if not stamp.isdigit():
            raise MalformedDataError(path, number, "timestamp must be a whole number")
        found.append((movie, tag, int(stamp)))
    return found
