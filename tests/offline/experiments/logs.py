"""Prediction logs written through the record contract (:mod:`service.experiments.records`):
hand-made records, and a simulated experiment in which the synthetic world's shoppers click on
what each arm shows them."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from offline.data.synthetic import ClickModel
from service.experiments import records

#: Scores ``[R, C]`` an arm gives each request's candidates, from the users ``[R]``.
Ranker = Callable[[npt.NDArray[np.int64], npt.NDArray[np.int64]], npt.NDArray[np.floating]]


def prediction(
    request_id: str,
    user_id: str,
    items: Sequence[str],
    arm: str | None = "control",
    *,
    experiment: str | None = "exp",
    shadow: bool = False,
    scores: Sequence[float] | None = None,
) -> records.PredictionRecord:
    return {
        "kind": "prediction",
        "format": records.RECORD_FORMAT,
        "ts": 1_764_000_000.0,
        "request_id": request_id,
        "user_id": user_id,
        "experiment": experiment,
        "experiment_version": 1 if experiment else None,
        "arm": arm,
        "shadow": shadow,
        "bundle_version": f"bundle-{arm}",
        "items": list(items),
        "scores": list(scores)
        if scores is not None
        else [1.0 - i / 100 for i in range(len(items))],
        "candidates": len(items) + 5,
        "degraded": [],
    }


def outcome(request_id: str, item_id: str, kind: str = "click") -> records.OutcomeRecord:
    return {
        "kind": "outcome",
        "format": records.RECORD_FORMAT,
        "ts": 1_764_000_010.0,
        "request_id": request_id,
        "item_id": item_id,
        "outcome": kind,  # type: ignore[typeddict-item]
    }


def write_log(folder: Path, lines: Iterable[Mapping[str, object]], files: int = 1) -> list[Path]:
    """The records as JSON Lines, split over ``files`` files named in writing order."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [json.dumps(line) for line in lines]
    per_file = -(-len(rows) // files) if rows else 0
    paths = []
    for index in range(files):
        path = folder / f"{records.LOG_FILE_PREFIX}{index:05d}{records.LOG_FILE_SUFFIX}"
        chunk = rows[index * per_file : (index + 1) * per_file]
        path.write_text("".join(row + "\n" for row in chunk))
        paths.append(path)
    return paths


def assigned_arm(user: str, arms: Sequence[str], salt: str = "salt") -> str:
    """Sticky, even assignment by a salted hash of the user (as a service would)."""
    return arms[zlib.crc32(f"{salt}:{user}".encode()) % len(arms)]


def simulated_log(
    world: ClickModel,
    arms: Mapping[str, Ranker],
    *,
    requests_per_user: int,
    candidates: int = 30,
    top_k: int = 10,
    seed: int = 0,
) -> list[Mapping[str, object]]:
    """Every user sends ``requests_per_user`` requests of ``candidates`` drawn by the world's
    exposure; its arm ranks them and shows ``top_k``; the user clicks with the world's
    probability times the examination of the position. Predictions and outcomes, in order."""
    rng = np.random.default_rng(seed)
    n_users = len(world.truth.user_latent)
    users = np.repeat(np.arange(n_users, dtype=np.int64), requests_per_user)
    offered = world.candidates(users, np.full(len(users), 1_764_000_000), candidates, rng)
    names = list(arms)
    chosen = np.array([assigned_arm(f"u{u}", names) for u in range(n_users)])[users]
    pages = np.zeros((len(users), top_k), dtype=np.int64)
    for name, ranker in arms.items():
        rows = np.flatnonzero(chosen == name)
        scores = ranker(users[rows], offered[rows])
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
        pages[rows] = np.take_along_axis(offered[rows], order, axis=1)
    clicked = world.clicks(users, pages, rng)
    log: list[Mapping[str, object]] = []
    for row, user in enumerate(users):
        request_id = f"r{row}"
        items = [f"i{item}" for item in pages[row]]
        log.append(prediction(request_id, f"u{user}", items, str(chosen[row])))
        log += [outcome(request_id, items[p]) for p in np.flatnonzero(clicked[row])]
    return log
