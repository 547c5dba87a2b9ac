"""Loaders from public dataset formats into the canonical :class:`~offline.data.canonical.Dataset`.

Formats: RecBole atomic files, MovieLens 1M ``.dat``, Taobao ``UserBehavior.csv`` and Amazon
Reviews 2023 JSONL. Every loader follows the rules of :mod:`offline.data.loaders.assemble`: clicks
from a rating threshold, sampled non-clicks from items live at the time, original IDs kept with a
``u``/``i`` prefix, a split at a quantile of time. Nothing is downloaded: point a loader at a
folder that already holds the files.

Files are read by Arrow one block at a time into a columnar log (:mod:`.batches`, :mod:`.log`), so
a Taobao-size log (100M rows) is a few bytes a field; ``LoaderConfig.sample_users``, ``since`` and
``until`` sample it while it streams. A file Arrow's reader has doubts about is read line by line,
which is also what names a malformed line.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from offline.data.canonical import Dataset
from offline.data.loaders.amazon import load_amazon
from offline.data.loaders.assemble import ItemFields, LoaderConfig, assemble_dataset
from offline.data.loaders.movielens import load_movielens
from offline.data.loaders.recbole import load_recbole
from offline.data.loaders.sources import MalformedDataError
from offline.data.loaders.taobao import load_taobao


class DatasetFormat(StrEnum):
    recbole = "recbole"
    movielens = "movielens"
    taobao = "taobao"
    amazon = "amazon"


LOADERS: dict[DatasetFormat, Callable[[Path, LoaderConfig], Dataset]] = {
    DatasetFormat.recbole: load_recbole,
    DatasetFormat.movielens: load_movielens,
    DatasetFormat.taobao: load_taobao,
    DatasetFormat.amazon: load_amazon,
}


def load_dataset(
    kind: DatasetFormat | str, directory: Path, config: LoaderConfig | None = None
) -> Dataset:
    """The canonical dataset of the files in ``directory``, read as format ``kind``."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    return LOADERS[DatasetFormat(kind)](directory, config or LoaderConfig())


__all__ = [
    "LOADERS",
    "DatasetFormat",
    "ItemFields",
    "LoaderConfig",
    "MalformedDataError",
    "assemble_dataset",
    "load_dataset",
]
