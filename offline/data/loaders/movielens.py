"""MovieLens 1M ``.dat`` files: ``ratings.dat`` and ``movies.dat`` (``::``-separated, latin-1).

``ratings.dat``: ``UserID::MovieID::Rating::Timestamp``; ``movies.dat``:
``MovieID::Title::Genres`` with ``|``-separated genres. A movie's category is
``Movies><first genre>``; its other genres become the style. ``users.dat`` is not needed.
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
from offline.data.loaders.sources import MalformedDataError, numbered_lines

ENCODING = "latin-1"
DEPARTMENT = "Movies"


def _fields(path: Path, number: int, line: str, count: int) -> list[str]:
    values = line.split("::")
    if len(values) != count:
        raise MalformedDataError(
            path, number, f"expected {count} '::'-separated fields, got {len(values)}"
        )
    return values


def load_movielens(directory: Path, config: LoaderConfig) -> Dataset:
    ratings = directory / "ratings.dat"
    log = Interactions()
    for number, line in numbered_lines(ratings, ENCODING):
        user, movie, rating, stamp = _fields(ratings, number, line, 4)
        try:
            label = int(float(rating) >= config.click_threshold)
            ts = int(stamp)
        except ValueError:
            raise MalformedDataError(
                ratings, number, "rating and timestamp must be numbers"
            ) from None
        log.add(user, movie, ts, label=label, event=CLICK if label else NO_BEHAVIOUR)
    meta: dict[str, ItemFields] = {}
    movies = directory / "movies.dat"
    if movies.is_file():
        for number, line in numbered_lines(movies, ENCODING):
            movie, title, genres = _fields(movies, number, line, 3)
            names = [g.strip() for g in genres.split("|") if g.strip()]
            meta[movie] = ItemFields(
                title=title.strip(),
                category_path=f"{DEPARTMENT}>{names[0]}" if names else "",
                style=", ".join(g.lower() for g in names[1:]),
            )
    return assemble_dataset(log, meta, config, "movielens-1m", DEPARTMENT)
