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
"""

from __future__ import annotations

import csv
import re
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
from offline.data.loaders.sources import MalformedDataError, numbered_lines, open_text

ENCODING = "latin-1"
DEPARTMENT = "Movies"


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


def load_movielens(directory: Path, config: LoaderConfig) -> Dataset:
    """The 1M layout when ``ratings.dat`` is there, else the CSV layout of latest(-small)."""
    if not (directory / "ratings.dat").is_file() and (directory / "ratings.csv").is_file():
        return load_movielens_csv(directory, config)
    ratings = directory / "ratings.dat"
    log = Interactions()
    for number, line in numbered_lines(ratings, ENCODING):
        _add_rating(log, config, (ratings, number), *_fields(ratings, number, line, 4))
    meta: dict[str, ItemFields] = {}
    movies = directory / "movies.dat"
    if movies.is_file():
        for number, line in numbered_lines(movies, ENCODING):
            movie, title, genres = _fields(movies, number, line, 3)
            meta[movie] = movie_fields(title, genres)
    return assemble_dataset(log, meta, config, "movielens-1m", DEPARTMENT)


def _csv_rows(path: Path, header: list[str]) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of a CSV file whose first line must be ``header``."""
    if not path.is_file():
        raise MalformedDataError(path, None, "file not found")
    with open_text(path) as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None or [f.strip() for f in first] != header:
            raise MalformedDataError(path, 1, f"expected the header {','.join(header)}")
        rows = []
        for fields in reader:
            if not fields:
                continue
            if len(fields) != len(header):
                raise MalformedDataError(
                    path, reader.line_num, f"expected {len(header)} fields, got {len(fields)}"
                )
            rows.append((reader.line_num, fields))
        return rows


def load_movielens_csv(directory: Path, config: LoaderConfig) -> Dataset:
    ratings = directory / "ratings.csv"
    log = Interactions()
    for number, fields in _csv_rows(ratings, ["userId", "movieId", "rating", "timestamp"]):
        _add_rating(log, config, (ratings, number), *fields)
    meta: dict[str, ItemFields] = {}
    movies = directory / "movies.csv"
    if movies.is_file():
        for _, (movie, title, genres) in _csv_rows(movies, ["movieId", "title", "genres"]):
            meta[movie] = movie_fields(title, genres)
    tags = directory / "tags.csv"
    if tags.is_file():
        for number, (_, movie, tag, stamp) in _csv_rows(
            tags, ["userId", "movieId", "tag", "timestamp"]
        ):
            if not stamp.isdigit():
                raise MalformedDataError(tags, number, "timestamp must be a whole number")
            meta.setdefault(movie, ItemFields()).keywords.append((tag, int(stamp)))
    return assemble_dataset(log, meta, config, "movielens-csv", DEPARTMENT)
